"""The shipped nginx configuration (deploy/nginx/anchor-console.conf) in front of a live
channel's console, over real TLS.

Debian's nginx runs the shipped server blocks, changed only where every machine differs (its
ports, the certificate made by the project's own test CA, the console's port), inside a
minimal nginx.conf of its own in the test's folder. A client that trusts only the test CA logs
in through it as a browser would; the console must then mark its cookies Secure, hear the
client's real address, take a form post from the proxied origin and stream the live state
unbuffered. Straight to the console, without TLS, and with X-Forwarded-Proto sent from an
address it does not trust, the cookies must not be Secure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from http.cookies import Morsel, SimpleCookie
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from configs import ROOT, write_config

from anchor.config import load_config
from anchor.console.app import build_app
from anchor.console.server import WebServer
from anchor.daemon import Channel, RunOptions
from anchor.harness.certificates import BrokerCertificates, make_certificates
from anchor.harness.ports import free_port
from anchor.media.output import OutputTarget
from anchor.show.schedule import load_schedule

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

NGINX = "/usr/sbin/nginx"  # Debian's nginx-light; /usr/sbin is not on a normal user's PATH
SHIPPED = ROOT / "deploy" / "nginx" / "anchor-console.conf"
PASSWORD = "proxy 测试 password"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 10.0
SPOOFED = "203.0.113.9"  # what a client claims to be in its own X-Forwarded-For
OTHER_CLIENT = "127.0.0.2"  # loopback too, but not in console.trusted_proxies


class ReverseProxy:
    """nginx as a foreground process (no daemon) with everything it writes in `workdir`."""

    def __init__(self, workdir: Path, certificates: BrokerCertificates, console_port: int):
        self.workdir = workdir
        self.https_port = free_port()
        self.http_port = free_port()
        self.error_log = workdir / "error.log"
        self.config_file = workdir / "nginx.conf"
        workdir.mkdir(parents=True, exist_ok=True)
        site = workdir / "anchor-console.conf"
        site.write_text(
            shipped_site(self.http_port, self.https_port, certificates, console_port),
            encoding="utf-8",
        )
        for temp in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (workdir / temp).mkdir(exist_ok=True)
        # As root, nginx's workers would run as "nobody", who cannot enter the test's folder.
        user = "user root;\n" if os.geteuid() == 0 else ""
        self.config_file.write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {workdir / 'nginx.pid'};\n"
            f"error_log {self.error_log} info;\n"
            "events { worker_connections 64; }\n"
            "http {\n"
            f"    access_log {workdir / 'access.log'};\n"
            f"    client_body_temp_path {workdir / 'body'};\n"
            f"    proxy_temp_path {workdir / 'proxy'};\n"
            f"    fastcgi_temp_path {workdir / 'fastcgi'};\n"
            f"    uwsgi_temp_path {workdir / 'uwsgi'};\n"
            f"    scgi_temp_path {workdir / 'scgi'};\n"
            f"    include {site};\n"
            "}\n",
            encoding="utf-8",
        )
        self._process: asyncio.subprocess.Process | None = None

    @property
    def https(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    async def start(self) -> None:
        """Start and return once both ports accept connections."""
        # -e: where nginx writes errors before it has read the error_log line.
        command: list[str | Path] = [NGINX, "-p", self.workdir, "-e", self.error_log]
        command += ["-c", self.config_file]
        self._process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        waiting = [self.https_port, self.http_port]
        while waiting and time.monotonic() < deadline:
            if self._process.returncode is not None:
                pytest.fail(f"nginx exited at start ({self._process.returncode}). {self.log()}")
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", waiting[0])
                writer.close()
                await writer.wait_closed()
                waiting.pop(0)
                continue
            await asyncio.sleep(0.05)
        if waiting:
            await self.stop()
            pytest.fail(f"nginx did not listen on port {waiting[0]}. {self.log()}")

    async def stop(self) -> None:
        """SIGTERM (nginx's fast shutdown: the master ends its workers), then SIGKILL."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()

    def log(self) -> str:
        if not self.error_log.exists():
            return "no nginx error log"
        lines = self.error_log.read_text(encoding="utf-8", errors="replace").splitlines()
        return "nginx error log:\n" + "\n".join(lines[-15:])


def shipped_site(
    http_port: int, https_port: int, certificates: BrokerCertificates, console_port: int
) -> str:
    """The shipped server blocks with only the machine's own lines changed; a line that is no
    longer there fails the test, so it never runs a configuration that drifted from the file."""
    text = SHIPPED.read_text(encoding="utf-8")
    changes = [
        ("    listen 80;\n", f"    listen 127.0.0.1:{http_port};\n"),
        ("    listen [::]:80;\n", ""),
        ("    listen 443 ssl;\n", f"    listen 127.0.0.1:{https_port} ssl;\n"),
        ("    listen [::]:443 ssl;\n", ""),
        (
            "    ssl_certificate /etc/ssl/anchor-console/fullchain.pem;\n",
            f"    ssl_certificate {certificates.cert_file};\n",
        ),
        (
            "    ssl_certificate_key /etc/ssl/anchor-console/privkey.pem;\n",
            f"    ssl_certificate_key {certificates.key_file};\n",
        ),
        ("proxy_pass http://127.0.0.1:8080;\n", f"proxy_pass http://127.0.0.1:{console_port};\n"),
    ]
    for old, new in changes:
        assert old in text, f"{SHIPPED.name} no longer has the line {old.strip()!r}"
        text = text.replace(old, new)
    return text


@dataclass(frozen=True, slots=True)
class Site:
    """The running channel, the proxy in front of its console, and the CA to trust."""

    channel: Channel
    proxy: ReverseProxy
    tls: ssl.SSLContext

    @property
    def console(self) -> str:
        service = self.channel.console
        assert service is not None and service.web is not None
        return f"http://127.0.0.1:{service.web.port}"


async def until(check: Callable[[], Awaitable[Any]], what: str, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        await asyncio.sleep(0.1)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    found = await asyncio.to_thread(os.access, NGINX, os.X_OK)
    assert found, "nginx is missing: apt-get install --no-install-recommends nginx-light"
    root = tmp_path_factory.mktemp("console-proxy")
    certificates = await asyncio.to_thread(make_certificates, root / "tls", name="console")
    os.environ["ANCHOR_CONSOLE_PASSWORD"] = PASSWORD
    config = load_config(
        write_config(root, console="{listen: '127.0.0.1:0', trusted_proxies: ['127.0.0.1']}")
    )
    options = RunOptions(output=OutputTarget.parse(str(root / "show.ts")), duration_s=600)
    channel = Channel(config, load_schedule(config.schedule), options)
    task = asyncio.create_task(channel.run(), name="channel")
    proxy: ReverseProxy | None = None
    try:

        async def serving() -> bool:
            if task.done():
                task.result()
                pytest.fail("the channel ended before its console came up")
            service = channel.console
            return service is not None and service.web is not None

        await until(serving, "the console to serve", 90)
        assert channel.console is not None and channel.console.web is not None
        proxy = ReverseProxy(root / "nginx", certificates, channel.console.web.port)
        await proxy.start()
        tls = ssl.create_default_context(cafile=str(certificates.ca_file))
        yield Site(channel, proxy, tls)
    finally:
        try:
            if proxy is not None:
                await proxy.stop()
        finally:
            channel.request_stop()
            try:
                await asyncio.wait_for(task, 30)
            finally:
                os.environ.pop("ANCHOR_CONSOLE_PASSWORD", None)


def client(site: Site, *, local_address: str | None = None) -> httpx.AsyncClient:
    """A client that trusts only the test CA. Tests send their cookies in an explicit Cookie
    header (it wins over httpx's jar, which would withhold a Secure cookie on plain HTTP)
    and read every Set-Cookie as the server wrote it."""
    transport = httpx.AsyncHTTPTransport(verify=site.tls, local_address=local_address)
    return httpx.AsyncClient(transport=transport, timeout=REQUEST_TIMEOUT_S)


def set_cookies(response: httpx.Response) -> dict[str, Morsel[str]]:
    found: dict[str, Morsel[str]] = {}
    for header in response.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        found.update(cookie)
    return found


async def log_in(
    http: httpx.AsyncClient, base: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    """The login form as a browser fills it in: the ticket from the page and its cookie."""
    headers = headers or {}
    page = await http.get(base + "/login", headers=headers)
    assert page.status_code == 200, page.text
    match = re.search(r'name="ticket" value="([^"]+)"', page.text)
    assert match, "no ticket in the login form"
    ticket = match.group(1)
    assert set_cookies(page)["anchor_login"].value == ticket
    response = await http.post(
        base + "/login",
        data={"ticket": ticket, "user": "operator", "password": PASSWORD},
        headers={**headers, "cookie": f"anchor_login={ticket}"},
    )
    assert response.status_code == 303, response.text
    return response


async def test_the_login_through_the_proxy_sets_a_secure_session_cookie(site: Site) -> None:
    async with client(site, local_address=OTHER_CLIENT) as http:
        response = await log_in(http, site.proxy.https, {"x-forwarded-for": SPOOFED})
    assert response.url.scheme == "https"
    assert response.headers["strict-transport-security"] == "max-age=31536000"
    session = set_cookies(response)["anchor_session"]
    assert session["secure"] is True
    assert session["httponly"] is True
    assert session["samesite"].lower() == "strict"
    # The console heard the client's own address from the proxy, not what the client claimed.
    assert site.channel.console is not None
    rows = await site.channel.console.parts.store.audit_rows(cmd="login")
    assert [row.detail for row in rows[:1]] == [f"from {OTHER_CLIENT}"]


async def test_an_action_through_the_proxy_passes_the_origin_check(site: Site) -> None:
    """The console compares the browser's Origin with the Host it is told: the proxy must pass
    the host and port the browser used (here not 443), or every action would be refused."""
    async with client(site) as http:
        token = set_cookies(await log_in(http, site.proxy.https))["anchor_session"].value
        cookie = {"cookie": f"anchor_session={token}"}
        page = await http.get(site.proxy.https + "/", headers=cookie)
        assert page.status_code == 200
        match = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert match, "no CSRF token on the on-air page"
        form = {"csrf": match.group(1), "review": "off"}
        url = site.proxy.https + "/questions/review"
        stranger = await http.post(
            url, data=form, headers={**cookie, "origin": "https://console.example.org"}
        )
        assert stranger.status_code == 403
        assert "another site" in stranger.text
        applied = await http.post(url, data=form, headers={**cookie, "origin": site.proxy.https})
        assert applied.status_code == 303, applied.text
        assert applied.headers["location"] == "/questions"
    assert site.channel.console is not None
    rows = await site.channel.console.parts.store.audit_rows(cmd="review")
    assert [(row.detail, row.result) for row in rows] == [("off", "applied")]


async def test_healthz_answers_through_the_proxy(site: Site) -> None:
    async with client(site) as http:
        response = await http.get(site.proxy.https + "/healthz")
    assert response.status_code == 200
    assert response.json()["status"] in ("ok", "degraded")
    assert "strict-transport-security" in response.headers


async def test_plain_http_on_the_proxy_redirects_to_https(site: Site) -> None:
    async with client(site) as http:
        response = await http.get(
            site.proxy.http + "/login?lang=en", headers={"x-forwarded-proto": "https"}
        )
    assert response.status_code == 301
    # The shipped file redirects to the standard port; the path and query are kept.
    assert response.headers["location"] == "https://127.0.0.1/login?lang=en"
    assert "set-cookie" not in response.headers


async def test_the_live_state_streams_through_the_proxy_unbuffered(site: Site) -> None:
    async with client(site) as http:
        token = set_cookies(await log_in(http, site.proxy.https))["anchor_session"].value
        arrived: list[float] = []
        states: list[dict[str, Any]] = []
        async with (
            asyncio.timeout(15),
            http.stream(
                "GET", site.proxy.https + "/live", headers={"cookie": f"anchor_session={token}"}
            ) as stream,
        ):
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            async for line in stream.aiter_lines():
                if line.startswith("data: "):
                    arrived.append(time.monotonic())
                    states.append(json.loads(line.removeprefix("data: ")))
                    if len(states) == 3:
                        break
    assert all("line" in state and "health" in state for state in states)
    # One state a second, each as it is sent: not held back until a buffer fills.
    gaps = [later - earlier for earlier, later in zip(arrived, arrived[1:], strict=False)]
    assert all(0.5 < gap < 2.5 for gap in gaps), gaps


async def test_uploads_of_the_default_size_pass_and_larger_bodies_stop_at_the_proxy(
    site: Site,
) -> None:
    async with client(site) as http:
        # 500 KiB: through nginx to the console, which refuses the form for its missing ticket.
        allowed = await http.post(
            site.proxy.https + "/login", data={"ticket": "x", "password": "p" * 500 * 1024}
        )
        assert allowed.status_code == 403
        assert allowed.text.startswith("refused: reload the login page")
        # 700 KiB: nginx answers itself; the channel never reads it.
        refused = await http.post(site.proxy.https + "/login", content=b"p" * 700 * 1024)
        assert refused.status_code == 413
        assert "request too large" not in refused.text
        assert "<html>" in refused.text


async def test_straight_to_the_console_without_tls_the_cookie_is_not_secure(site: Site) -> None:
    async with client(site) as http:
        response = await log_in(http, site.console)
    session = set_cookies(response)["anchor_session"]
    assert session["secure"] == ""
    assert session["httponly"] is True


async def test_forwarded_proto_is_believed_only_from_a_trusted_proxy(site: Site) -> None:
    claim = {"x-forwarded-proto": "https"}
    # 127.0.0.1 is in trusted_proxies: the header is believed (what the proxy relies on).
    async with client(site) as http:
        trusted = await log_in(http, site.console, claim)
    assert set_cookies(trusted)["anchor_session"]["secure"] is True
    # Another address sending the same header straight to the console is not believed.
    async with client(site, local_address=OTHER_CLIENT) as http:
        untrusted = await log_in(http, site.console, claim)
    assert set_cookies(untrusted)["anchor_session"]["secure"] == ""


async def test_with_no_trusted_proxies_forwarded_headers_are_ignored(site: Site) -> None:
    """The same console served as `console.trusted_proxies: []` serves it."""
    service = site.channel.console
    assert service is not None and service.console is not None
    settings = service.parts.config.console
    web = WebServer(
        build_app(service.console, max_body_bytes=settings.max_upload_kb * 1024 + 16 * 1024),
        "127.0.0.1",
        0,
        trusted_proxies=(),
    )
    await web.start()
    try:
        async with client(site) as http:
            response = await log_in(http, web.url.rstrip("/"), {"x-forwarded-proto": "https"})
    finally:
        await web.aclose()
    assert set_cookies(response)["anchor_session"]["secure"] == ""
