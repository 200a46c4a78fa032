"""The live-chat wire format: 16-byte big-endian headers, bodies raw, zlib or brotli.

A packet is ``>IHHII`` (packet length including the header, header length 16, protocol
version, operation, sequence) followed by its body. One websocket frame may hold several
packets back to back; a packet of version 2 (zlib) or 3 (brotli) holds, once decompressed,
several complete packets again. Everything from the server is untrusted, so decoding is
bounded: a packet longer than `MAX_PACKET_BYTES` or a body that decompresses to more than
`MAX_BODY_BYTES` is refused rather than buffered, and compressed packets do not nest.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

import brotli

from anchor.bridges.bilibili.errors import PacketError

HEADER = struct.Struct(">IHHII")
HEADER_BYTES = HEADER.size  # 16
MAX_PACKET_BYTES = 1 << 20  # 1 MiB: no real chat packet comes near it
MAX_BODY_BYTES = 8 << 20  # 8 MiB once decompressed: a bound against compression bombs


class Op(IntEnum):
    HEARTBEAT = 2
    HEARTBEAT_REPLY = 3  # body: int32 popularity
    MESSAGE = 5  # body: JSON {"cmd": ..., ...}
    AUTH = 7
    AUTH_REPLY = 8  # body: JSON {"code": 0}


class Version(IntEnum):
    JSON = 0  # raw JSON body
    PLAIN = 1  # heartbeats and auth
    ZLIB = 2  # body is zlib-compressed packets
    BROTLI = 3  # body is brotli-compressed packets


@dataclass(frozen=True, slots=True)
class Packet:
    op: int
    body: bytes
    version: int = Version.PLAIN
    sequence: int = 1


def encode(op: int, body: bytes = b"", *, version: int = Version.PLAIN, sequence: int = 1) -> bytes:
    """One packet on the wire."""
    length = HEADER_BYTES + len(body)
    if length > MAX_PACKET_BYTES:
        raise PacketError(f"packet of {length} bytes is over the {MAX_PACKET_BYTES}-byte bound")
    return HEADER.pack(length, HEADER_BYTES, version, op, sequence) + body


def encode_compressed(packets: list[bytes], version: int, *, sequence: int = 0) -> bytes:
    """Several encoded packets as one compressed message packet (version 2 or 3)."""
    inner = b"".join(packets)
    if version == Version.ZLIB:
        body = zlib.compress(inner)
    elif version == Version.BROTLI:
        body = brotli.compress(inner)
    else:
        raise ValueError(f"version {version} is not a compressed version")
    return encode(Op.MESSAGE, body, version=version, sequence=sequence)


def decode(frame: bytes) -> list[Packet]:
    """Every packet in a websocket frame, compressed ones expanded into what they hold."""
    packets: list[Packet] = []
    for packet in _split(frame):
        if packet.version in (Version.ZLIB, Version.BROTLI) and packet.op == Op.MESSAGE:
            for inner in _split(_decompress(packet.version, packet.body)):
                if inner.version in (Version.ZLIB, Version.BROTLI):
                    raise PacketError("compressed packet inside a compressed packet")
                packets.append(inner)
        else:
            packets.append(packet)
    return packets


def _split(data: bytes) -> list[Packet]:
    packets: list[Packet] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < HEADER_BYTES:
            raise PacketError(f"{len(data) - offset} trailing bytes are shorter than a header")
        length, header_length, version, op, sequence = HEADER.unpack_from(data, offset)
        if length > MAX_PACKET_BYTES:
            raise PacketError(f"packet of {length} bytes is over the {MAX_PACKET_BYTES}-byte bound")
        if header_length < HEADER_BYTES or length < header_length:
            raise PacketError(f"bad lengths: packet {length}, header {header_length}")
        if offset + length > len(data):
            raise PacketError(f"packet of {length} bytes truncated at {len(data) - offset}")
        body = data[offset + header_length : offset + length]
        packets.append(Packet(op, body, version, sequence))
        offset += length
    return packets


def _decompress(version: int, body: bytes) -> bytes:
    try:
        if version == Version.ZLIB:
            inflater = zlib.decompressobj()
            out = inflater.decompress(body, MAX_BODY_BYTES + 1)
            complete = inflater.eof
        else:
            decompressor = brotli.Decompressor()
            out = decompressor.process(body, output_buffer_limit=MAX_BODY_BYTES + 1)
            complete = decompressor.is_finished()
    except (zlib.error, brotli.error) as exc:
        raise PacketError(f"body does not decompress (version {version}): {exc}") from exc
    if len(out) > MAX_BODY_BYTES:
        raise PacketError(f"body decompresses to over {MAX_BODY_BYTES} bytes")
    if not complete:
        raise PacketError(f"compressed body (version {version}) is truncated")
    return out
