"""The TLS side of a broker connection (mqtts), made from ``mqtt.tls``.

A fresh context per connection, so a renewed certificate or CA file on disk is used from the
next reconnect on, without restarting the engine.
"""

from __future__ import annotations

import ssl

from anchor.config import MqttTlsConfig


def client_context(tls: MqttTlsConfig) -> ssl.SSLContext:
    """A client context: TLS 1.2 or newer, the broker's certificate checked against ``ca_file``
    (or the system's CAs) and, unless ``insecure``, its host name.

    Raises ``ssl.SSLError`` or ``OSError`` (a subclass) when a file cannot be read or used.
    """
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=None if tls.ca_file is None else str(tls.ca_file)
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.cert_file is not None and tls.key_file is not None:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    if tls.insecure:
        context.check_hostname = False  # the certificate chain is still verified
    return context
