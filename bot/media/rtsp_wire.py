"""RTSP on the wire (RFC 2326): requests, replies, the SDP's video track, Basic and Digest auth.

Pure functions and values, no I/O: ``rtsp_client.py`` drives a connection with them. Only
what a camera reader needs is here: one H.264 video track, played over the RTSP connection
itself (interleaved RTP, no UDP ports to open through the venue's firewall).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from .h264 import annexb_extradata, parse_sps

_HEADER_END = b"\r\n\r\n"
_AUTH_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')


class RtspError(ConnectionError):
    """The camera answered, but not with what we asked for (status, SDP, codec)."""


@dataclass(frozen=True, slots=True)
class Target:
    """A camera URL split into what goes on the wire and the credentials that never do."""

    url: str  # without credentials: what the requests carry
    host: str
    port: int
    username: str | None
    password: str | None


def target(url: str) -> Target:
    parts = urlsplit(url)
    if parts.scheme.lower() != "rtsp" or not parts.hostname:
        raise ValueError("not an rtsp:// URL")
    host = parts.hostname
    port = parts.port or 554
    shown = f"[{host}]" if ":" in host else host
    netloc = shown + (f":{parts.port}" if parts.port else "")
    return Target(urlunsplit(parts._replace(netloc=netloc)), host, port,
                  unquote(parts.username) if parts.username is not None else None,
                  unquote(parts.password) if parts.password is not None else None)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    reason: str
    headers: dict[str, str]  # names lower-cased; a repeated header keeps its first value
    body: bytes = b""
    challenges: tuple[str, ...] = ()  # every WWW-Authenticate, in order

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def split_reply(buf: bytearray) -> tuple[Reply, int] | None:
    """The reply at the start of ``buf`` and its length in bytes, or None while incomplete."""
    end = buf.find(_HEADER_END)
    if end < 0:
        return None
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith("RTSP/") or not status_line[1].isdigit():
        raise RtspError(f"not an RTSP reply: {lines[0][:60]!r}")
    headers: dict[str, str] = {}
    challenges: list[str] = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        if key == "www-authenticate":
            challenges.append(value.strip())
        headers.setdefault(key, value.strip())
    size = int(headers.get("content-length", "0") or 0)
    total = end + len(_HEADER_END) + size
    if len(buf) < total:
        return None
    body = bytes(buf[end + len(_HEADER_END):total])
    reason = status_line[2] if len(status_line) > 2 else ""
    return Reply(int(status_line[1]), reason, headers, body, tuple(challenges)), total


def request(method: str, url: str, cseq: int, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {url} RTSP/1.0", f"CSeq: {cseq}", "User-Agent: Vigie"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# --- authentication (RFC 2617 as RTSP cameras use it: Digest MD5, qop auth or none; Basic) ---

@dataclass
class Credentials:
    username: str
    password: str
    challenge: dict[str, str] = field(default_factory=dict)
    scheme: str = ""
    _count: int = 0

    def accept(self, challenges: tuple[str, ...]) -> bool:
        """Take the strongest challenge we support; False when none is usable."""
        parsed = [(c.split(" ", 1)[0].lower(), c.split(" ", 1)[1] if " " in c else "") for c in challenges]
        for scheme, rest in sorted(parsed, key=lambda p: p[0] != "digest"):
            if scheme == "digest":
                params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
                          for m in _AUTH_PARAM.finditer(rest)}
                if params.get("algorithm", "MD5").upper() == "MD5" and "nonce" in params:
                    self.scheme, self.challenge, self._count = "digest", params, 0
                    return True
            elif scheme == "basic":
                self.scheme, self.challenge = "basic", {}
                return True
        return False

    def header(self, method: str, uri: str) -> str | None:
        if self.scheme == "basic":
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return f"Basic {token}"
        if self.scheme != "digest":
            return None
        c = self.challenge
        realm, nonce = c.get("realm", ""), c["nonce"]
        ha1 = _md5(f"{self.username}:{realm}:{self.password}")
        ha2 = _md5(f"{method}:{uri}")
        fields = [f'username="{self.username}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
        qops = [q.strip() for q in c.get("qop", "").split(",") if q.strip()]
        if "auth" in qops:
            self._count += 1
            nc, cnonce = f"{self._count:08x}", os.urandom(8).hex()
            response = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
            fields += ["qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
        else:
            response = _md5(f"{ha1}:{nonce}:{ha2}")
        fields.append(f'response="{response}"')
        if "opaque" in c:
            fields.append(f'opaque="{c["opaque"]}"')
        return "Digest " + ", ".join(fields)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


# --- SDP (RFC 4566) and H.264's fmtp (RFC 6184) -----------------------------------------------

@dataclass(frozen=True, slots=True)
class VideoTrack:
    control: str  # absolute URL to SETUP
    payload_type: int
    clock_rate: int
    extradata: bytes  # Annex-B SPS + PPS from sprop-parameter-sets, b"" when absent
    width: int
    height: int
    fps: float | None


def video_track(sdp: bytes, base: str) -> VideoTrack:
    """The first H.264 video track of a DESCRIBE's SDP; RtspError when there is none."""
    text = sdp.decode("utf-8", "replace")
    media = re.split(r"(?m)^m=", text)
    session = media[0]
    for section in media[1:]:
        if not section.startswith("video"):
            continue
        formats = section.split("\n", 1)[0].split()[3:]
        attrs = re.findall(r"(?m)^a=([\w-]+):?(.*?)\r?$", section)
        payload = next((int(f) for f in formats if f.isdigit()), 96)
        rtpmap = {int(v.split()[0]): v.split()[1] for k, v in attrs if k == "rtpmap" and v.split()[0].isdigit()}
        codec = rtpmap.get(payload, "")
        if codec.split("/")[0].upper() != "H264":
            raise RtspError(f"codec {codec.split('/')[0] or 'unknown'} is not H.264")
        clock = int(codec.split("/")[1]) if codec.count("/") >= 1 and codec.split("/")[1].isdigit() else 90_000
        control = next((v.strip() for k, v in attrs if k == "control"), "")
        fmtp = next((v for k, v in attrs if k == "fmtp" and v.startswith(f"{payload} ")), "")
        fps = next((_float(v) for k, v in attrs if k == "framerate"), None)
        extradata, width, height = _sprop(fmtp)
        return VideoTrack(_control_url(control, base, session), payload, clock, extradata, width, height, fps)
    raise RtspError("no video track in the SDP")


def _control_url(control: str, base: str, session: str) -> str:
    if control.lower().startswith("rtsp://"):
        return control
    found = re.search(r"(?m)^a=control:(.*?)\r?$", session)
    session_control = found.group(1).strip() if found else ""
    if session_control.lower().startswith("rtsp://"):
        base = session_control
    if not control or control == "*":
        return base
    return urljoin(base if base.endswith("/") else base + "/", control)


def _sprop(fmtp: str) -> tuple[bytes, int, int]:
    found = re.search(r"sprop-parameter-sets=([^;\s]+)", fmtp)
    if not found:
        return b"", 0, 0
    try:
        nals = [base64.b64decode(p + "=" * (-len(p) % 4)) for p in found.group(1).split(",") if p]
    except ValueError:
        return b"", 0, 0
    sps = [n for n in nals if n and n[0] & 0x1F == 7]
    pps = [n for n in nals if n and n[0] & 0x1F == 8]
    if not sps or not pps:
        return b"", 0, 0
    try:
        info = parse_sps(sps[0])
    except (ValueError, IndexError):
        return annexb_extradata(sps, pps), 0, 0
    return annexb_extradata(sps, pps), info.width, info.height


def _float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def session_id(value: str) -> tuple[str, float]:
    """The Session header's id and its timeout in seconds (RFC 2326's default: 60)."""
    ident, _, rest = value.partition(";")
    found = re.search(r"timeout\s*=\s*(\d+)", rest)
    return ident.strip(), float(found.group(1)) if found else 60.0
