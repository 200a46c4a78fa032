"""`anchor kb eval` and `anchor kb check`, as union staff use them on their own FAQ: totals,
each confusion with file:line and scores, the threshold trade-off, problems in the questions
file named by file:line, and entries that repeat or shadow each other."""

from __future__ import annotations

from pathlib import Path

import pytest

from anchor.cli import main

FAQ = """\
entries:
  - id: dues-amount
    question: 工会会费交多少？
    answer: 会员按本人每月工资收入的千分之五交会费，一般由单位工会从工资里代扣。
  - id: legal-aid-free
    question: 工会法律援助要收钱吗？
    alternates: [请工会律师打官司要付费吗]
    answer: 法律咨询是免费的。符合条件的职工，工会还能免费帮忙代理劳动仲裁和诉讼。
  - id: holiday-tickets
    question: 春节回家工会能帮忙买车票吗？
    answer: 不少地方工会在春节前会组织返乡专列或返乡大巴，为外来务工人员提供免费或优惠车票。
"""


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    kb = tmp_path / "faq.yaml"
    kb.write_text(FAQ, encoding="utf-8")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"knowledge: {{path: {kb}}}\nstore: {{path: {tmp_path / 'anchor.db'}}}\n", encoding="utf-8"
    )
    return kb, config


def questions(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "questions.tsv"
    path.write_text(text, encoding="utf-8")
    return path


def test_eval_prints_totals_confusions_and_the_tradeoff(
    setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kb, config = setup
    tsv = questions(
        tmp_path,
        "# how our members ask\nquestion\texpected\n"
        "过年回老家能坐工会的免费大巴吗\tholiday-tickets\n"
        "一个月扣多少会费\tdues-amount\n"
        "请律师要钱不\tlegal-aid-free\n"
        "\n"
        "今天广州下雨吗\t-\n"
        "工会会费交多少\tlegal-aid-free\n",  # deliberately wrong: shows up as a confusion
    )
    assert main(["kb", "eval", str(kb), str(tsv), "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "3 entries, semantic retrieval" in out
    assert "threshold 0.50: right entry for 3/4 in-scope questions (75%)" in out
    assert "fallback for 1/1 out-of-scope (100%)" in out
    [confusion] = [line for line in out.splitlines() if line.startswith(f"  {tsv}:")]
    assert confusion.startswith(f"  {tsv}:8: 工会会费交多少 → dues-amount (best dues-amount 0.")
    assert "expected legal-aid-free 0." in confusion
    table = out.split("threshold  in-scope right  out-of-scope refused\n")[1].splitlines()
    assert len(table) == 19 and "0.50" in table[9] and "← current" in table[9]

    strict = ["kb", "eval", str(kb), str(tsv), "--config", str(config), "--threshold", "0.995"]
    assert main(strict) == 0
    out = capsys.readouterr().out
    assert "threshold 0.99" in out  # printed to two places
    assert "fallback for 1/1" in out


def test_eval_names_file_and_line_of_every_bad_line(
    setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kb, config = setup
    tsv = questions(
        tmp_path,
        "question\texpected\n"
        "会费交多少\tdues-amount\n"
        "没有制表符的一行\n"
        "会费\tdues-amount\textra\n"
        "律师\tlawyer-fees\n"
        "\tdues-amount\n"
        "车票\t\n",
    )
    assert main(["kb", "eval", str(kb), str(tsv), "--config", str(config)]) == 2
    errors = capsys.readouterr().err
    assert f"{tsv}:3: expected 'question<TAB>entry id'" in errors
    assert f"{tsv}:4: expected 'question<TAB>entry id'" in errors
    assert f"{tsv}:5: unknown entry id 'lawyer-fees' in {kb}" in errors
    assert f"{tsv}:6: the question is empty" in errors
    assert f"{tsv}:7: no entry id after the tab" in errors
    assert f"{tsv}:2" not in errors


def test_check_finds_repeated_and_confusable_entries_with_file_and_line(
    setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kb, config = setup
    assert main(["kb", "check", str(kb), "--config", str(config)]) == 0
    assert "no duplicates or confusable entries" in capsys.readouterr().out

    shadowed = tmp_path / "shadowed.yaml"
    tickets = FAQ.splitlines()[10].split("answer: ")[1]
    shadowed.write_text(
        FAQ
        + "  - id: dues-how-much\n    question: 会费要交多少钱？\n"
        + "    answer: 每月工资收入的千分之五。\n"
        + "  - id: tickets-again\n    question: 返乡车票工会给报销吗？\n"
        + f"    answer: {tickets}\n",
        encoding="utf-8",
    )
    assert main(["kb", "check", str(shadowed), "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert (
        f"{shadowed}:15: entry 'tickets-again' has the same answer as 'holiday-tickets' "
        f"({shadowed}:9)" in out
    )
    [pair] = [line for line in out.splitlines() if "'dues-how-much'" in line]
    assert pair.startswith((f"{shadowed}:2: entries 'dues-amount'", f"{shadowed}:12: entries"))
    assert "easily confused" in pair and ("dues-amount" in pair)
