"""RTSP on the wire (bot/media/rtsp_wire.py), pure: URLs, replies, SDPs cameras send, auth."""

from __future__ import annotations

import base64

import pytest

from bot.media import rtsp_wire
from bot.media.h264 import parameter_sets
from bot.media.rtsp_wire import Credentials, RtspError, session_id, split_reply, target, video_track
from bot.media.synthetic import EncodedLoop


@pytest.fixture
def sets(small_loop: EncodedLoop) -> tuple[bytes, bytes]:
    """A real SPS and PPS (libx264's, 320x180)."""
    sps, pps = parameter_sets(small_loop.extradata)
    return sps[0], pps[0]


def test_credentials_never_go_in_the_request_line() -> None:
    t = target("rtsp://agent%40pc:p%3Ass@192.0.2.7:8554/Streaming/Channels/101?transportmode=unicast")
    assert (t.username, t.password) == ("agent@pc", "p:ss")
    assert t.url == "rtsp://192.0.2.7:8554/Streaming/Channels/101?transportmode=unicast"
    assert (t.host, t.port) == ("192.0.2.7", 8554)
    assert target("rtsp://[2001:db8::1]/live").port == 554
    assert target("rtsp://[2001:db8::1]/live").url == "rtsp://[2001:db8::1]/live"
    with pytest.raises(ValueError, match="rtsp://"):
        target("http://192.0.2.7/live")


def test_replies_whole_partial_and_junk() -> None:
    sdp = b"v=0\r\n"
    raw = (b"RTSP/1.0 401 Unauthorized\r\nCSeq: 2\r\nWWW-Authenticate: Digest realm=\"IP Camera\", "
           b"nonce=\"abc\"\r\nWWW-Authenticate: Basic realm=\"IP Camera\"\r\nContent-Length: 5\r\n\r\n") + sdp
    assert split_reply(bytearray(raw[:-2])) is None
    reply, size = split_reply(bytearray(raw + b"$\x00\x00\x04abcd")) or (None, 0)
    assert reply is not None and size == len(raw)
    assert (reply.status, reply.header("CSeq"), reply.body) == (401, "2", sdp)
    assert len(reply.challenges) == 2
    with pytest.raises(RtspError, match="not an RTSP reply"):
        split_reply(bytearray(b"HTTP/1.1 200 OK\r\n\r\n"))


def test_digest_matches_rfc_2617s_worked_example(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rtsp_wire.os, "urandom", lambda n: bytes.fromhex("0a4f113b"))
    c = Credentials("Mufasa", "Circle Of Life")
    assert c.accept(('Digest realm="testrealm@host.com", qop="auth,auth-int", '
                     'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"',))
    header = c.header("GET", "/dir/index.html") or ""
    assert 'response="6629fae49393a05397450978507c4ef1"' in header
    assert "nc=00000001" in header and 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in header
    assert "Circle Of Life" not in header


def test_digest_without_qop_and_basic_as_fallback() -> None:
    c = Credentials("admin", "12345")
    assert c.accept(('Basic realm="cam"', 'Digest realm="cam", nonce="n0"'))  # Digest preferred
    header = c.header("DESCRIBE", "rtsp://cam/live") or ""
    assert header.startswith("Digest ") and "qop" not in header
    basic = Credentials("admin", "12345")
    assert basic.accept(('Basic realm="cam"',))
    assert basic.header("DESCRIBE", "rtsp://cam/live") == "Basic " + base64.b64encode(b"admin:12345").decode()
    assert not Credentials("a", "b").accept(('Digest realm="x", nonce="n", algorithm=SHA-256',))


def camera_sdp(control: str = "trackID=1", session_control: str = "", rtpmap: str = "H264/90000",
               sets: tuple[bytes, bytes] | None = None) -> bytes:
    fmtp = ("a=fmtp:96 profile-level-id=42C01E;packetization-mode=1;sprop-parameter-sets="
            + base64.b64encode(sets[0]).decode() + "," + base64.b64encode(sets[1]).decode() + "\r\n") if sets else ""
    return (f"v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=Media\r\nt=0 0\r\n{session_control}"
            "m=audio 0 RTP/AVP 0\r\na=control:trackID=2\r\n"
            f"m=video 0 RTP/AVP 96\r\na=rtpmap:96 {rtpmap}\r\n{fmtp}a=framerate:25\r\n"
            f"a=control:{control}\r\n").encode()


def test_the_video_track_of_a_cameras_sdp(sets: tuple[bytes, bytes]) -> None:
    track = video_track(camera_sdp(sets=sets), "rtsp://192.0.2.7/live/")
    assert track.control == "rtsp://192.0.2.7/live/trackID=1"
    assert (track.payload_type, track.clock_rate, track.fps) == (96, 90_000, 25.0)
    assert track.extradata == b"\x00\x00\x00\x01" + sets[0] + b"\x00\x00\x00\x01" + sets[1]
    assert (track.width, track.height) == (320, 180)
    absolute = video_track(camera_sdp("rtsp://192.0.2.7/ch1/track1"), "rtsp://192.0.2.7/ch1")
    assert absolute.control == "rtsp://192.0.2.7/ch1/track1"
    aggregate = video_track(camera_sdp("*"), "rtsp://192.0.2.7/ch1")
    assert aggregate.control == "rtsp://192.0.2.7/ch1"
    session_level = video_track(camera_sdp("track1", "a=control:rtsp://192.0.2.7/ch1/\r\n"), "rtsp://x/")
    assert session_level.control == "rtsp://192.0.2.7/ch1/track1"
    bare = video_track(camera_sdp(), "rtsp://192.0.2.7/ch1")
    assert (bare.extradata, bare.width) == (b"", 0)  # filled in later from the first keyframe


def test_sdps_we_cannot_read_are_refused_clearly() -> None:
    with pytest.raises(RtspError, match="H265 is not H.264"):
        video_track(camera_sdp(rtpmap="H265/90000"), "rtsp://cam/")
    with pytest.raises(RtspError, match="no video track"):
        video_track(b"v=0\r\nm=audio 0 RTP/AVP 0\r\n", "rtsp://cam/")


def test_session_header() -> None:
    assert session_id("12345678;timeout=30") == ("12345678", 30.0)
    assert session_id(" abc ") == ("abc", 60.0)
