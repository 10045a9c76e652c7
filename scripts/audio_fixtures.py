#!/usr/bin/env python3
"""Byte-level helpers for the audio test fixtures (tests/fixtures/audio/).

Used by scripts/make-audio-fixtures.sh and scripts/record-browser-audio.sh; standard library
only. Subcommands:

  wav OUT --rate R --channels C --bits B --format pcm|float|extensible   (raw PCM on stdin)
      Wraps little-endian PCM in a WAV header written exactly as asked: WAVE_FORMAT_PCM (1) with
      a 16-byte fmt chunk, WAVE_FORMAT_IEEE_FLOAT (3) with an 18-byte fmt chunk and a fact chunk,
      or WAVE_FORMAT_EXTENSIBLE (0xFFFE) with the KSDATAFORMAT_SUBTYPE_PCM GUID.
  size-fields IN OUT VALUE
      Copies a canonical 44-byte-header WAV and sets its RIFF and data size fields to VALUE (0 or
      0xFFFFFFFF: what streaming writers leave when they cannot seek back).
  ebml FILE [--json]
      Walks a Matroska/WebM file, unknown-size elements included, and says what it is made of.
  cut-webm IN OUT
      Truncates a live-shape WebM part-way into a SimpleBlock of its last Cluster, as a recording
      whose tab was closed mid-write; prints what a decoder can still get out of it.
  lace-webm IN OUT
      Re-muxes a WebM Opus file (one frame per block, as ffmpeg writes) with laced SimpleBlocks:
      Xiph and EBML lacing alternately, 5 frames each. No tool here writes laced Opus.
  mp4 FILE [--json]
      Lists the boxes of an ISO BMFF file (MP4, M4A, 3GP) that matter to a demuxer.
  note --notes FILE ...
      Appends one fixture's description to a JSON-lines notes file (the make scripts do this).
  verify --dir DIR [--min-r R]
      Decodes each fixture with ffmpeg to 16 kHz mono and checks that its 20 ms loudness envelope
      follows speech-16k.wav's (over the fixture's span; a live recording may lag a little).
  decoded-ms FILE
      Prints how many ms of audio ffmpeg decodes from FILE (at its own rate, one decimal).
  manifest --dir DIR --notes FILE
      Measures every noted file with ffprobe/ffmpeg and writes DIR/fixtures.json and the table in
      DIR/README.md; entries for files noted by an earlier run are kept.
"""

import argparse
import json
import math
import os
import re
import struct
import subprocess
import sys

# ---------------------------------------------------------------------------------------------
# WAV

PCM_GUID = bytes.fromhex("0100000000001000800000aa00389b71")  # KSDATAFORMAT_SUBTYPE_PCM
FLOAT_GUID = bytes.fromhex("0300000000001000800000aa00389b71")  # KSDATAFORMAT_SUBTYPE_IEEE_FLOAT


def cmd_wav(args):
    data = sys.stdin.buffer.read()
    block_align = args.channels * args.bits // 8
    if len(data) % block_align:
        sys.exit(f"wav: {len(data)} bytes is not a whole number of {block_align}-byte frames")
    frames = len(data) // block_align
    byte_rate = args.rate * block_align
    chunks = b""
    if args.format == "pcm":
        fmt = struct.pack("<HHIIHH", 1, args.channels, args.rate, byte_rate, block_align, args.bits)
    elif args.format == "float":
        fmt = struct.pack("<HHIIHHH", 3, args.channels, args.rate, byte_rate, block_align, args.bits, 0)
        chunks += b"fact" + struct.pack("<II", 4, frames)
    else:  # extensible
        mask = {1: 0x4, 2: 0x3}[args.channels]  # front centre; front left + right
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, args.channels, args.rate, byte_rate, block_align,
                          args.bits, 22, args.bits, mask) + PCM_GUID
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + chunks
    body += b"data" + struct.pack("<I", len(data)) + data
    if len(data) % 2:
        body += b"\0"
    with open(args.out, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", len(body)) + body)


def cmd_size_fields(args):
    data = bytearray(open(args.input, "rb").read())
    if data[0:4] != b"RIFF" or data[12:16] != b"fmt " or data[36:40] != b"data":
        sys.exit("size-fields: not a canonical 44-byte-header WAV")
    value = int(args.value, 0)
    struct.pack_into("<I", data, 4, value)
    struct.pack_into("<I", data, 40, value)
    with open(args.output, "wb") as f:
        f.write(data)


# ---------------------------------------------------------------------------------------------
# EBML / Matroska

MASTER_CHILDREN = {
    0x1A45DFA3: {0x4286, 0x42F7, 0x42F2, 0x42F3, 0x4282, 0x4287, 0x4285, 0xEC, 0xBF},  # EBML
    0x18538067: {0x114D9B74, 0x1549A966, 0x1654AE6B, 0x1F43B675, 0x1C53BB6B, 0x1254C367,
                 0x1043A770, 0x1941A469, 0xEC, 0xBF},  # Segment
    0x1F43B675: {0xE7, 0xA3, 0xA0, 0xA7, 0xAB, 0x5854, 0xEC, 0xBF},  # Cluster
    0x1549A966: None, 0x1654AE6B: None, 0xAE: None, 0xE1: None, 0xA0: None,
    0x114D9B74: None, 0x1C53BB6B: None, 0x1254C367: None,
}
NAMES = {
    0x1A45DFA3: "EBML", 0x4282: "DocType", 0x18538067: "Segment", 0x114D9B74: "SeekHead",
    0x1549A966: "Info", 0x1654AE6B: "Tracks", 0x1F43B675: "Cluster", 0x1C53BB6B: "Cues",
    0x1254C367: "Tags", 0xEC: "Void", 0xE7: "Timestamp", 0xA3: "SimpleBlock", 0xA0: "BlockGroup",
    0xA1: "Block", 0x75A2: "DiscardPadding", 0x9B: "BlockDuration", 0xAE: "TrackEntry",
    0x86: "CodecID", 0x63A2: "CodecPrivate", 0x56AA: "CodecDelay", 0x56BB: "SeekPreRoll",
    0xE1: "Audio", 0xB5: "SamplingFrequency", 0x9F: "Channels", 0x6264: "BitDepth",
    0x2AD7B1: "TimestampScale", 0x4489: "Duration", 0x4D80: "MuxingApp", 0x5741: "WritingApp",
}
UNKNOWN = object()


def read_vint(data, pos, keep_marker):
    """(value, length, raw bytes); value is UNKNOWN for an all-ones size. None past the end."""
    if pos >= len(data):
        return None
    first = data[pos]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8 or pos + length > len(data):
        return None
    raw = data[pos:pos + length]
    value = int.from_bytes(raw, "big")
    if not keep_marker:
        value &= (1 << (7 * length)) - 1
        if value == (1 << (7 * length)) - 1:
            value = UNKNOWN
    return value, length, raw


class Element:
    def __init__(self, eid, offset, header_len, size, size_raw, end, truncated):
        self.id, self.offset, self.header_len, self.size = eid, offset, header_len, size
        self.size_raw, self.end, self.truncated = size_raw, end, truncated
        self.children = []

    @property
    def data_start(self):
        return self.offset + self.header_len

    def payload(self, data):
        return data[self.data_start:min(self.end, len(data))]

    def find(self, eid):
        return [c for c in self.children if c.id == eid]

    def first(self, eid):
        found = self.find(eid)
        return found[0] if found else None


def parse_ebml(data, pos=0, end=None, parent_children=None):
    """Parses elements from pos to end (None: to the end of data or, inside an unknown-size
    master, to the first element that cannot be its child)."""
    elements = []
    limit = len(data) if end is None else min(end, len(data))
    while pos < limit:
        vid = read_vint(data, pos, True)
        if vid is None:
            break
        eid, idlen, _ = vid
        if end is None and parent_children is not None and eid not in parent_children:
            break
        vsize = read_vint(data, pos + idlen, False)
        if vsize is None:
            elements.append(Element(eid, pos, idlen, None, b"", len(data), True))
            break
        size, sizelen, size_raw = vsize
        header_len = idlen + sizelen
        el_end = None if size is UNKNOWN else pos + header_len + size
        truncated = el_end is not None and el_end > len(data)
        el = Element(eid, pos, header_len, size, size_raw, el_end, truncated)
        if eid in MASTER_CHILDREN:
            kids = MASTER_CHILDREN[eid]
            el.children = parse_ebml(data, pos + header_len, el_end, kids)
            if el_end is None:
                el.end = el.children[-1].end if el.children else pos + header_len
        elements.append(el)
        if el.end is None or el.end <= pos:
            break
        pos = el.end
    return elements


def uint(b):
    return int.from_bytes(b, "big")


def opus_packet_samples(packet):
    """Samples at 48 kHz in one Opus packet, from its TOC byte (RFC 6716, 3.1)."""
    if not packet:
        return 0
    toc = packet[0]
    config = toc >> 3
    if config < 12:
        frame = [480, 960, 1920, 2880][config % 4]
    elif config < 16:
        frame = [480, 960][config % 2]
    else:
        frame = [120, 240, 480, 960][config % 4]
    code = toc & 3
    if code == 0:
        count = 1
    elif code in (1, 2):
        count = 2
    else:
        count = packet[1] & 0x3F if len(packet) > 1 else 0
    return frame * count


def split_block(payload):
    """(track, relative timestamp, flags, lacing name, [frames]) of a (Simple)Block payload.
    frames is None when the block is cut short."""
    track, tlen, _ = read_vint(payload, 0, False)
    rel = struct.unpack(">h", payload[tlen:tlen + 2])[0]
    flags = payload[tlen + 2]
    pos = tlen + 3
    lacing = {0: "none", 2: "xiph", 4: "fixed", 6: "ebml"}[flags & 0x06]
    if lacing == "none":
        return track, rel, flags, lacing, [payload[pos:]]
    count = payload[pos] + 1
    pos += 1
    sizes = []
    if lacing == "xiph":
        for _ in range(count - 1):
            size = 0
            while True:
                b = payload[pos]
                pos += 1
                size += b
                if b != 255:
                    break
            sizes.append(size)
    elif lacing == "ebml":
        first, n, _ = read_vint(payload, pos, False)
        pos += n
        sizes.append(first)
        for _ in range(count - 2):
            raw, n, _ = read_vint(payload, pos, False)
            pos += n
            sizes.append(sizes[-1] + raw - ((1 << (7 * n - 1)) - 1))
    else:
        each = (len(payload) - pos) // count
        sizes = [each] * (count - 1)
    sizes.append(len(payload) - pos - sum(sizes))
    frames = []
    for size in sizes:
        frames.append(payload[pos:pos + size])
        pos += size
    return track, rel, flags, lacing, frames


def ebml_summary(path):
    data = open(path, "rb").read()
    top = parse_ebml(data, 0, None, None)
    out = {"file": os.path.basename(path), "bytes": len(data)}
    ebml = next((e for e in top if e.id == 0x1A45DFA3), None)
    doctype = ebml.first(0x4282) if ebml else None
    out["doctype"] = doctype.payload(data).decode() if doctype else None
    seg = next((e for e in top if e.id == 0x18538067), None)
    if seg is None:
        out["error"] = "no Segment"
        return out
    out["segment_size_field"] = seg.size_raw.hex(" ")
    out["segment_size"] = "unknown" if seg.size is UNKNOWN else seg.size
    out["segment_truncated"] = bool(seg.truncated)
    info = seg.first(0x1549A966)
    if info:
        scale = info.first(0x2AD7B1)
        out["timestamp_scale_ns"] = uint(scale.payload(data)) if scale else 1000000
        dur = info.first(0x4489)
        if dur:
            raw = dur.payload(data)
            out["info_duration"] = struct.unpack(">f" if len(raw) == 4 else ">d", raw)[0]
        else:
            out["info_duration"] = None
        for eid, key in ((0x4D80, "muxing_app"), (0x5741, "writing_app")):
            el = info.first(eid)
            out[key] = el.payload(data).decode(errors="replace") if el else None
    out["seek_head"] = bool(seg.find(0x114D9B74))
    out["cues"] = bool(seg.find(0x1C53BB6B))
    tracks = seg.first(0x1654AE6B)
    entry = tracks.first(0xAE) if tracks else None
    codec = None
    if entry:
        cid = entry.first(0x86)
        codec = cid.payload(data).decode() if cid else None
        out["codec_id"] = codec
        for eid, key in ((0x56AA, "codec_delay_ns"), (0x56BB, "seek_pre_roll_ns")):
            el = entry.first(eid)
            out[key] = uint(el.payload(data)) if el else None
        priv = entry.first(0x63A2)
        if priv:
            p = priv.payload(data)
            out["codec_private_bytes"] = len(p)
            if p[:8] == b"OpusHead":
                out["opus_head"] = {"channels": p[9], "pre_skip": struct.unpack("<H", p[10:12])[0],
                                    "input_rate": struct.unpack("<I", p[12:16])[0],
                                    "mapping_family": p[18]}
        audio = entry.first(0xE1)
        if audio:
            rate = audio.first(0xB5)
            if rate:
                raw = rate.payload(data)
                out["sampling_frequency"] = struct.unpack(">f" if len(raw) == 4 else ">d", raw)[0]
            ch = audio.first(0x9F)
            out["channels"] = uint(ch.payload(data)) if ch else 1
            bd = audio.first(0x6264)
            out["bit_depth"] = uint(bd.payload(data)) if bd else None
    clusters = seg.find(0x1F43B675)
    out["clusters"] = len(clusters)
    out["clusters_unknown_size"] = sum(1 for c in clusters if c.size is UNKNOWN)
    out["cluster_size_fields"] = sorted({c.size_raw.hex(" ") for c in clusters})
    blocks = {"SimpleBlock": 0, "BlockGroup": 0}
    lacings = {}
    frames_per_block = set()
    samples = 0
    complete_samples = 0
    discard_ns = 0
    last_end_ms = None
    cut_block = None
    for c in clusters:
        ts = c.first(0xE7)
        cluster_ts = uint(ts.payload(data)) if ts else 0
        for b in c.children:
            if b.id == 0xA3:
                payload, kind = b, "SimpleBlock"
            elif b.id == 0xA0:
                payload, kind = b.first(0xA1), "BlockGroup"
                dp = b.first(0x75A2)
                if dp:
                    raw = dp.payload(data)
                    discard_ns += int.from_bytes(raw, "big", signed=True)
            else:
                continue
            blocks[kind] += 1
            if payload is None or payload.truncated or b.truncated:
                cut_block = {"offset": b.offset, "declared_end": b.end, "file_end": len(data)}
                continue
            _, rel, _, lacing, frames = split_block(payload.payload(data))
            lacings[lacing] = lacings.get(lacing, 0) + 1
            frames_per_block.add(len(frames))
            if codec == "A_OPUS":
                n = sum(opus_packet_samples(f) for f in frames)
                samples += n
                complete_samples += n
                last_end_ms = (cluster_ts + rel) * out["timestamp_scale_ns"] / 1e6 + n / 48.0
    out["blocks"] = blocks
    out["lacing"] = lacings
    out["frames_per_block"] = sorted(frames_per_block)
    out["discard_padding_ns"] = discard_ns
    if cut_block:
        out["cut_block"] = cut_block
    if codec == "A_OPUS":
        pre_skip = out.get("opus_head", {}).get("pre_skip", 0)
        out["opus_samples_in_complete_blocks"] = complete_samples
        decodable = complete_samples - pre_skip - round(discard_ns * 48000 / 1e9)
        out["opus_decodable_samples"] = decodable
        out["opus_decodable_ms"] = decodable / 48.0
        out["last_block_end_ms"] = last_end_ms
    return out


def cmd_ebml(args):
    s = ebml_summary(args.file)
    if args.json:
        print(json.dumps(s))
    else:
        for k, v in s.items():
            print(f"{k}: {v}")


def cmd_cut_webm(args):
    data = open(args.input, "rb").read()
    top = parse_ebml(data, 0, None, None)
    seg = next(e for e in top if e.id == 0x18538067)
    clusters = seg.find(0x1F43B675)
    last = clusters[-1]
    blocks = [b for b in last.children if b.id in (0xA3, 0xA0)]
    if len(blocks) < 3:
        sys.exit("cut-webm: the last Cluster has fewer than 3 blocks; nothing to cut part-way")
    index = len(blocks) // 2
    victim = blocks[index]
    cut = victim.data_start + (victim.end - victim.data_start) // 2
    with open(args.output, "wb") as f:
        f.write(data[:cut])

    def block_ms(b):
        payload = b if b.id == 0xA3 else b.first(0xA1)
        return sum(opus_packet_samples(f) for f in split_block(payload.payload(data))[4]) / 48.0

    kept_ms = sum(block_ms(b) for b in blocks[:index])
    torn_ms = block_ms(victim)
    print(json.dumps({"cut_at": cut, "of": len(data), "last_cluster_at": last.offset,
                      "blocks_in_last_cluster": len(blocks), "cut_block_index": index,
                      "complete_ms_in_torn_cluster": kept_ms, "torn_block_ms": torn_ms,
                      "tolerance_ms": max(kept_ms, torn_ms) + 10}))


# -- Writing Matroska (lace-webm) ---------------------------------------------------------------

def ebml_size(n):
    """An EBML size of n in as few bytes as it fits (all-ones means unknown, so is avoided)."""
    for length in range(1, 9):
        if n < (1 << (7 * length)) - 1:
            return (n | (1 << (7 * length))).to_bytes(length, "big")
    raise ValueError(n)


def el(eid, payload):
    idb = eid.to_bytes((eid.bit_length() + 7) // 8, "big")
    return idb + ebml_size(len(payload)) + payload


def el_uint(eid, value):
    return el(eid, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def el_sint(eid, value):
    length = 1
    while not -(1 << (8 * length - 1)) <= value < (1 << (8 * length - 1)):
        length += 1
    return el(eid, value.to_bytes(length, "big", signed=True))


def xiph_lace(frames):
    head = bytes([len(frames) - 1])
    for f in frames[:-1]:
        n = len(f)
        head += b"\xff" * (n // 255) + bytes([n % 255])
    return head


def ebml_lace(frames):
    head = bytes([len(frames) - 1]) + ebml_size(len(frames[0]))
    for prev, cur in zip(frames, frames[1:-1]):
        diff = len(cur) - len(prev)
        for n in range(1, 9):
            bias = (1 << (7 * n - 1)) - 1
            if -bias <= diff <= bias:
                head += (diff + bias | (1 << (7 * n))).to_bytes(n, "big")
                break
    return head


def cmd_lace_webm(args):
    data = open(args.input, "rb").read()
    top = parse_ebml(data, 0, None, None)
    seg = next(e for e in top if e.id == 0x18538067)
    entry = seg.first(0x1654AE6B).first(0xAE)
    info = seg.first(0x1549A966)
    scale = info.first(0x2AD7B1)
    if scale and uint(scale.payload(data)) != 1000000:
        sys.exit("lace-webm: expects a 1 ms TimestampScale")
    packets = []  # (absolute ms, frame bytes, discard padding ns or None)
    for c in seg.find(0x1F43B675):
        cts = uint(c.first(0xE7).payload(data))
        for b in c.children:
            discard = None
            if b.id == 0xA3:
                payload = b
            elif b.id == 0xA0:
                payload = b.first(0xA1)
                dp = b.first(0x75A2)
                discard = int.from_bytes(dp.payload(data), "big", signed=True) if dp else None
            else:
                continue
            _, rel, _, lacing, frames = split_block(payload.payload(data))
            if lacing != "none" or len(frames) != 1:
                sys.exit("lace-webm: input already laced")
            packets.append((cts + rel, frames[0], discard))
    # Header elements copied from the input, minus Cues and SeekHead (not needed: no seeking).
    ebml_header = data[top[0].offset:top[0].end]
    tracks = data[seg.first(0x1654AE6B).offset:seg.first(0x1654AE6B).end]
    dur = info.first(0x4489)
    info_payload = el_uint(0x2AD7B1, 1000000) + el(0x4D80, b"audio_fixtures.py lace-webm") \
        + el(0x5741, b"audio_fixtures.py lace-webm")
    if dur:
        info_payload += el(0x4489, dur.payload(data))
    body = el(0x1549A966, info_payload) + tracks
    group = 5
    cluster_ms = 1000
    i = 0
    lace_kind = 0
    cluster_start = None
    cluster_body = b""
    while i < len(packets):
        ms = packets[i][0]
        if cluster_start is None or ms - cluster_start >= cluster_ms:
            if cluster_start is not None:
                body += el(0x1F43B675, cluster_body)
            cluster_start = ms
            cluster_body = el_uint(0xE7, ms)
        run = []
        while i < len(packets) and len(run) < group and packets[i][2] is None:
            run.append(packets[i])
            i += 1
        if not run:  # a packet with DiscardPadding goes alone into a BlockGroup
            ms, frame, discard = packets[i]
            i += 1
            block = b"\x81" + struct.pack(">h", ms - cluster_start) + b"\x00" + frame
            cluster_body += el(0xA0, el(0xA1, block) + el_sint(0x75A2, discard))
            continue
        frames = [p[1] for p in run]
        if len(frames) == 1:
            flags, lace = 0x80, b""
        elif lace_kind % 2 == 0:
            flags, lace = 0x80 | 0x02, xiph_lace(frames)
        else:
            flags, lace = 0x80 | 0x06, ebml_lace(frames)
        lace_kind += 1
        block = b"\x81" + struct.pack(">h", run[0][0] - cluster_start) + bytes([flags]) + lace
        cluster_body += el(0xA3, block + b"".join(frames))
    body += el(0x1F43B675, cluster_body)
    with open(args.output, "wb") as f:
        f.write(ebml_header + el(0x18538067, body))


# ---------------------------------------------------------------------------------------------
# ISO BMFF

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf", b"mvex", b"moof",
              b"traf", b"udta", b"mfra"}


def mp4_boxes(data, pos, end, depth, out, path=""):
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
            header = 16
        elif size == 0:
            size = end - pos
        box_end = pos + size
        name = kind.decode("latin-1")
        out.append((depth, name, pos, size, path + "/" + name))
        if kind in CONTAINERS:
            mp4_boxes(data, pos + header, box_end, depth + 1, out, path + "/" + name)
        elif kind == b"stsd":
            mp4_boxes(data, pos + header + 8, box_end, depth + 1, out, path + "/" + name)
        elif kind in (b"mp4a", b"Opus", b"samr", b"fLaC"):
            mp4_boxes(data, pos + header + 28, box_end, depth + 1, out, path + "/" + name)
        if size < header:
            break
        pos = box_end


def mp4_summary(path):
    data = open(path, "rb").read()
    boxes = []
    mp4_boxes(data, 0, len(data), 0, boxes)
    out = {"file": os.path.basename(path), "bytes": len(data)}
    out["top_level"] = [b[1] for b in boxes if b[0] == 0]
    ftyp = next((b for b in boxes if b[1] == "ftyp"), None)
    if ftyp:
        p = data[ftyp[2] + 8:ftyp[2] + ftyp[3]]
        out["major_brand"] = p[:4].decode("latin-1")
        out["compatible_brands"] = [p[i:i + 4].decode("latin-1") for i in range(8, len(p), 4)]
    out["fragmented"] = "moof" in out["top_level"]
    out["moofs"] = out["top_level"].count("moof")
    tl = out["top_level"]
    if "moov" in tl and "mdat" in tl:
        out["moov_before_mdat"] = tl.index("moov") < tl.index("mdat")

    def payload(b):
        return data[b[2] + 8:b[2] + b[3]]

    for b in boxes:
        if b[1] == "mdhd":
            p = payload(b)
            if p[0] == 1:
                ts, dur = struct.unpack(">IQ", p[20:32])
            else:
                ts, dur = struct.unpack(">II", p[12:20])
            out["mdhd"] = {"timescale": ts, "duration": dur}
        elif b[1] == "elst":
            p = payload(b)
            version = p[0]
            count = struct.unpack(">I", p[4:8])[0]
            entries = []
            pos = 8
            for _ in range(count):
                if version == 1:
                    seg, mt = struct.unpack(">Qq", p[pos:pos + 16])
                    pos += 16
                else:
                    seg, mt = struct.unpack(">Ii", p[pos:pos + 8])
                    pos += 8
                entries.append({"segment_duration": seg, "media_time": mt})
                pos += 4
            out["elst"] = entries
        elif b[1] == "mvhd":
            p = payload(b)
            if p[0] == 1:
                ts, dur = struct.unpack(">IQ", p[20:32])
            else:
                ts, dur = struct.unpack(">II", p[12:20])
            out["mvhd"] = {"timescale": ts, "duration": dur}
        elif b[1] in ("mp4a", "Opus"):
            p = payload(b)
            out["sample_entry"] = b[1]
            out["sample_entry_channels"], out["sample_entry_bits"] = struct.unpack(">HH", p[16:20])
            out["sample_entry_rate"] = struct.unpack(">I", p[24:28])[0] >> 16
        elif b[1] == "dOps":
            p = payload(b)
            out["dOps"] = {"version": p[0], "channels": p[1],
                           "pre_skip": struct.unpack(">H", p[2:4])[0],
                           "input_rate": struct.unpack(">I", p[4:8])[0],
                           "output_gain": struct.unpack(">h", p[8:10])[0],
                           "mapping_family": p[10]}
        elif b[1] == "esds":
            p = payload(b)
            # DecoderSpecificInfo (tag 5) holds the AudioSpecificConfig.
            m = re.search(rb"\x05(?:[\x80-\xff]{0,3})([\x00-\x7f])", p[4:])
            if m:
                asc_len = m.group(1)[0]
                asc = p[4 + m.end():4 + m.end() + asc_len]
                if len(asc) >= 2:
                    aot = asc[0] >> 3
                    freq_index = ((asc[0] & 7) << 1) | (asc[1] >> 7)
                    chan = (asc[1] >> 3) & 0xF
                    out["audio_specific_config"] = {"object_type": aot, "freq_index": freq_index,
                                                    "channel_config": chan, "hex": asc.hex()}
        elif b[1] == "stsz":
            p = payload(b)
            out["stsz_samples"] = struct.unpack(">I", p[8:12])[0]
        elif b[1] == "trun":
            p = payload(b)
            out["trun_samples"] = out.get("trun_samples", 0) + struct.unpack(">I", p[4:8])[0]
    out["has_sidx"] = "sidx" in tl
    out["has_mfra"] = "mfra" in tl
    out["boxes"] = [("  " * b[0]) + b[1] for b in boxes]
    return out


def cmd_mp4(args):
    s = mp4_summary(args.file)
    if args.json:
        print(json.dumps(s))
    else:
        for k, v in s.items():
            if k != "boxes":
                print(f"{k}: {v}")
        print("boxes:\n" + "\n".join(s["boxes"]))


# ---------------------------------------------------------------------------------------------
# Notes and manifest

# Why a fixture's tolerance_ms is what it is; fixtures.json names the basis, README.md explains it.
# The service resamples to 16 kHz, so one output sample is 0.06 ms: "exact" formats get 1 ms.
TOLERANCE_BASES = {
    "pcm": "PCM (WAV, Matroska): every sample is in the file; only resampling rounding (< 0.1 ms).",
    "flac": "FLAC: lossless; STREAMINFO's sample count and the last frame's block size are exact.",
    "ogg_opus": "Ogg Opus: OpusHead pre-skip trims the start, the last page's granule position the "
                "end (RFC 7845), so a decoder can be exact (ffmpeg is).",
    "matroska_opus": "Matroska/WebM Opus from ffmpeg or mkvmerge: CodecDelay (= pre-skip) trims the "
                     "start, DiscardPadding on the last block the end, so a decoder can be exact "
                     "(ffmpeg is). Ignoring DiscardPadding adds up to one 20 ms frame; ignoring "
                     "pre-skip adds 6.5 ms.",
    "mp4_elst": "MP4/M4A/3GP with an edit list: elst media_time skips the encoder priming (AAC 1024, "
                "Opus 312 samples) and segment_duration gives the exact end. A decoder that honours "
                "both is exact; ffmpeg 5.1 honours only the start and decodes the last frame whole "
                "(+13.5 ms Opus, +16 ms AAC at 48 kHz, +16 ms AAC at 16 kHz here). For Opus the "
                "elst media_time equals the dOps pre-skip (312): skip it once, not twice.",
    "fragmented_mp4_opus": "Fragmented MP4, Opus, no edit list: dOps pre-skip trims the start, but "
                           "nothing marks the padding in the last 20 ms frame: up to 20 ms too "
                           "much (ffmpeg: +13.5 ms).",
    "fragmented_mp4_aac": "Fragmented MP4, AAC, no edit list: neither the 1024-sample priming "
                          "(21.3 ms at 48 kHz) nor the last frame's padding (< 21.3 ms) is marked; "
                          "a decoder that decodes everything is up to ~43 ms long (ffmpeg: +37.3 "
                          "ms); one that assumes 1024 priming is within 21.3 ms.",
    "adts": "ADTS AAC has no delay or length field: the 1024-sample priming (21.3 ms at 48 kHz) and "
            "the last frame's padding (< 21.3 ms) decode as audio: up to ~43 ms long (ffmpeg: "
            "+37.3 ms).",
    "mp3_lame_tag": "MP3 with a Xing/LAME info frame: it gives encoder delay and padding, so a "
                    "gapless decoder is exact (ffmpeg is). One that ignores it is long by the delay "
                    "(576 + 529 samples: 23 ms at 48 kHz, 46 ms at 24 kHz) plus the last frame's "
                    "padding (< 1152 samples at 48 kHz, < 576 at 24 kHz: < 24 ms).",
    "mp3_no_tag": "MP3 with no Xing/LAME frame: encoder delay (~1105 samples, 23 ms at 48 kHz) and "
                  "last-frame padding (< 1152 samples, 24 ms) cannot be known (ffmpeg: +32 ms).",
    "ogg_vorbis": "Ogg Vorbis: the last page's granule position gives the exact end, so a decoder "
                  "can be exact (ffmpeg is).",
    "chrome_webm": "Chrome's WebM: OpusHead pre-skip 0, no CodecDelay, no DiscardPadding: all "
                   "samples of all blocks are the file's length, so every decoder gets the same. "
                   "(The encoder's 6.5 ms look-ahead is thus part of the audio: the speech starts "
                   "that much later.)",
    "chrome_mp4": "Chrome's fragmented MP4: no edit list; the dOps pre-skip, 3840 (80 ms: the value "
                  "of Opus's recommended seek pre-roll, far more than the encoder's 312-sample "
                  "look-ahead), trims the start; the rest is all real samples. A decoder that "
                  "ignores the pre-skip is 80 ms long.",
    "truncated_webm": "Cut mid-block: duration_ms counts the complete blocks only (ffmpeg agrees). "
                      "A demuxer may instead drop the whole torn Cluster, its complete blocks too, "
                      "or hand the torn block to the decoder (one more 60 ms frame): tolerance_ms "
                      "is the larger of the two plus 10 ms.",
}


def cmd_note(args):
    if args.tolerance_basis not in TOLERANCE_BASES:
        sys.exit(f"note: unknown tolerance basis {args.tolerance_basis!r}")
    note = {
        "file": args.file,
        "source": args.source,
        "source_span_ms": [round(float(x), 1) for x in args.span.split(",")] if args.span else None,
        "duration_ms": round(float(args.duration_ms), 1),
        "tolerance_ms": float(args.tolerance_ms),
        "tolerance_basis": args.tolerance_basis,
        "stands_for": args.stands_for,
        "command": args.command,
    }
    if args.truncated:
        note["truncated"] = True
    with open(args.notes, "a") as f:
        f.write(json.dumps(note) + "\n")


def ffprobe(path):
    out = subprocess.run(["ffprobe", "-v", "warning", "-show_streams", "-show_format", "-of", "json",
                          path], capture_output=True, text=True)
    info = json.loads(out.stdout or "{}")
    info["stderr"] = out.stderr.strip()
    return info


def decoded_samples(path, rate, channels):
    """Samples per channel ffmpeg decodes at the stream's own rate (no resampling)."""
    out = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", path, "-map", "0:a:0",
                          "-f", "s16le", "-acodec", "pcm_s16le", "-ar", str(rate), "-"],
                         capture_output=True)
    return len(out.stdout) // (2 * channels), out.stderr.decode(errors="replace").strip()


def container_of(path, data):
    ext = os.path.splitext(path)[1].lower()
    if data[:4] == b"RIFF":
        return "wav"
    if data[:4] == b"OggS":
        return "ogg"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return ebml_summary(path)["doctype"]
    if data[:4] == b"fLaC":
        return "flac"
    if data[4:8] == b"ftyp":
        return {".m4a": "m4a", ".3gp": "3gp"}.get(ext, "mp4")
    if data[:3] == b"ID3" or (data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        if ext == ".aac":
            return "adts"
        return "mp3"
    raise ValueError(f"{path}: unknown container")


def opus_pre_skip(path, data):
    i = data.find(b"OpusHead")
    if i >= 0:
        return struct.unpack("<H", data[i + 10:i + 12])[0]
    i = data.find(b"dOps")
    if i >= 0:
        return struct.unpack(">H", data[i + 6:i + 8])[0]
    return None


def measure(path):
    data = open(path, "rb").read()
    probe = ffprobe(path)
    stream = next(s for s in probe.get("streams", []) if s.get("codec_type") == "audio")
    rate = int(stream["sample_rate"])
    channels = int(stream["channels"])
    fmt = probe.get("format", {})
    m = {
        "bytes": len(data),
        "container": container_of(path, data),
        "codec": stream["codec_name"],
        "sample_rate": rate,
        "channels": channels,
        "ffprobe_format": fmt.get("format_name"),
        "ffprobe_stream_duration": stream.get("duration"),
        "ffprobe_stream_duration_ts": stream.get("duration_ts"),
        "ffprobe_time_base": stream.get("time_base"),
        "ffprobe_start_time": stream.get("start_time"),
        "ffprobe_format_duration": fmt.get("duration"),
        "ffprobe_stderr": probe["stderr"],
    }
    if stream.get("codec_name") == "opus":
        m["pre_skip"] = opus_pre_skip(path, data)
    n, err = decoded_samples(path, rate, channels)
    m["ffmpeg_decoded_samples"] = n
    m["ffmpeg_decoded_ms"] = n * 1000.0 / rate
    m["ffmpeg_stderr"] = err
    if m["container"] in ("webm", "matroska"):
        e = ebml_summary(path)
        m["ebml"] = {k: e.get(k) for k in ("segment_size", "clusters", "clusters_unknown_size",
                                           "cues", "info_duration", "codec_delay_ns", "lacing",
                                           "discard_padding_ns", "cut_block")}
    if m["container"] in ("mp4", "m4a", "3gp"):
        s = mp4_summary(path)
        m["mp4"] = {k: s.get(k) for k in ("major_brand", "top_level", "fragmented", "elst",
                                          "moov_before_mdat", "dOps", "audio_specific_config")}
    return m


def probe_duration_text(e):
    """ffprobe's duration, in samples at the stream rate and in ms."""
    mm = e["measured"]
    d = mm["ffprobe_duration_s"]
    if d in (None, "N/A"):
        return "N/A"
    d = float(d)
    text = f"{round(d * e['sample_rate'])} ({d * 1000:.1f})"
    if mm["ffprobe_duration_from"] != "stream":
        text += " container"
    return text


MARK_START = "<!-- fixtures-table:start (written by scripts/audio_fixtures.py manifest) -->"
MARK_END = "<!-- fixtures-table:end -->"


def md_cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def decode_16k(path):
    """The file decoded by ffmpeg to 16 kHz mono 16-bit (ffmpeg's default down-mix)."""
    out = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", path, "-map", "0:a:0",
                          "-ac", "1", "-ar", "16000", "-f", "s16le", "-acodec", "pcm_s16le", "-"],
                         capture_output=True)
    return struct.unpack(f"<{len(out.stdout) // 2}h", out.stdout[:len(out.stdout) // 2 * 2])


def envelope_db(samples, window=320):
    """Loudness in dB (re. 1 LSB) of each 20 ms window at 16 kHz."""
    env = []
    for i in range(0, len(samples) - window + 1, window):
        chunk = samples[i:i + window]
        env.append(10 * math.log10(sum(x * x for x in chunk) / window + 1.0))
    return env


def correlate(ref, got, max_lag):
    """(best Pearson r, lag in windows) of got against ref over lags -max_lag..max_lag. Both
    envelopes are floored 40 dB below the reference's peak, so that the noise floor of silence
    (8-bit quantisation, a codec's hiss) does not count as a difference in loudness."""
    floor = max(ref) - 40.0
    ref = [max(x, floor) for x in ref]
    got = [max(x, floor) for x in got]
    best = (-2.0, 0)
    for lag in range(-max_lag, max_lag + 1):
        pairs = [(ref[i], got[i + lag]) for i in range(len(ref)) if 0 <= i + lag < len(got)]
        if len(pairs) < 5:
            continue
        xs, ys = zip(*pairs)
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        vx = sum((x - mx) ** 2 for x in xs)
        vy = sum((y - my) ** 2 for y in ys)
        if vx == 0 or vy == 0:
            continue
        r = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / math.sqrt(vx * vy)
        best = max(best, (r, lag))
    return best


def cmd_verify(args):
    """Decodes every fixture that has a kept reference and checks that its loudness envelope
    follows the reference's (Pearson r of 20 ms dB envelopes)."""
    doc = json.load(open(os.path.join(args.dir, "fixtures.json")))
    ref_all = envelope_db(decode_16k(os.path.join(args.dir, "speech-16k.wav")))
    failed = 0
    for e in doc["fixtures"]:
        if e["source"].startswith("bench"):
            print(f"{e['file']}: no kept reference (benchmark), skipped")
            continue
        got = envelope_db(decode_16k(os.path.join(args.dir, e["file"])))
        span = e.get("source_span_ms")
        if span:
            ref = ref_all[int(span[0] // 20):int(span[1] // 20)]
            max_lag = 3  # encoders' delays are trimmed; allow 60 ms
        else:
            ref = ref_all
            max_lag = 10  # a live recording: the speech starts a little after the recording
        r, lag = correlate(ref, got, max_lag)
        ok = r >= args.min_r
        failed += not ok
        print(f"{e['file']}: envelope r = {r:.3f} at {lag * 20} ms lag ({len(got)} windows)"
              + ("" if ok else f"  FAIL (< {args.min_r})"))
    if failed:
        sys.exit(f"verify: {failed} file(s) do not follow the speech")


def cmd_decoded_ms(args):
    m = measure(args.file)
    print(f"{m['ffmpeg_decoded_ms']:.1f}")


def cmd_manifest(args):
    json_path = os.path.join(args.dir, "fixtures.json")
    entries = []
    if os.path.exists(json_path):
        entries = json.load(open(json_path))["fixtures"]
    by_file = {e["file"]: e for e in entries}
    order = [e["file"] for e in entries]
    notes = [json.loads(line) for line in open(args.notes)] if args.notes else []
    for note in notes:
        if note["file"] not in by_file:
            order.append(note["file"])
        by_file[note["file"]] = note
    fixtures = []
    for name in order:
        note = by_file[name]
        path = os.path.join(args.dir, name)
        if not os.path.exists(path):
            print(f"manifest: {name} noted but missing; dropped", file=sys.stderr)
            continue
        m = measure(path)
        entry = {
            "file": name,
            "container": m["container"],
            "codec": m["codec"],
            "sample_rate": m["sample_rate"],
            "channels": m["channels"],
            "duration_ms": note["duration_ms"],
            "tolerance_ms": note["tolerance_ms"],
            "source": note["source"],
            "source_span_ms": note.get("source_span_ms"),
        }
        if note.get("truncated"):
            entry["truncated"] = True
        if "pre_skip" in m:
            entry["pre_skip"] = m["pre_skip"]
        entry["bytes"] = m["bytes"]
        entry["stands_for"] = note["stands_for"]
        entry["tolerance_basis"] = note["tolerance_basis"]
        entry["command"] = note["command"]
        entry["measured"] = {
            "ffprobe_duration_s": m["ffprobe_stream_duration"] or m["ffprobe_format_duration"],
            "ffprobe_duration_from": "stream" if m["ffprobe_stream_duration"] else
                                     "format" if m["ffprobe_format_duration"] else None,
            "ffprobe_start_time_s": m["ffprobe_start_time"],
            "ffmpeg_decoded_samples": m["ffmpeg_decoded_samples"],
            "ffmpeg_decoded_ms": round(m["ffmpeg_decoded_ms"], 3),
        }
        for key, text in (("ffprobe_says", m["ffprobe_stderr"]), ("ffmpeg_says", m["ffmpeg_stderr"])):
            if text:  # without the run's pointer values ("[matroska,webm @ 0x55d0...]")
                entry["measured"][key] = re.sub(r" @ 0x[0-9a-f]+\]", "]", text)[:300]
        off = m["ffmpeg_decoded_ms"] - entry["duration_ms"]
        if abs(off) > entry["tolerance_ms"]:
            print(f"manifest: note: {name}: ffmpeg decodes {m['ffmpeg_decoded_ms']:.1f} ms, "
                  f"expected {entry['duration_ms']} ± {entry['tolerance_ms']} ms", file=sys.stderr)
        fixtures.append(entry)
    doc = {
        "about": "One entry per file in this folder; see README.md. duration_ms is what the file "
                 "should decode to (the source speech's length, or for a browser recording its "
                 "real decoded length), tolerance_ms how close a correct decoder can get for the "
                 "format. 'measured' is what ffprobe/ffmpeg 5.1 said, for reference.",
        "fixtures": fixtures,
    }
    with open(json_path, "w") as f:  # one fixture a line: diffable, and a third of indent=2's size
        f.write('{\n  "about": ' + json.dumps(doc["about"]) + ',\n  "tolerance_bases": {\n')
        f.write(",\n".join(f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in TOLERANCE_BASES.items()))
        f.write('\n  },\n  "fixtures": [\n')
        f.write(",\n".join("    " + json.dumps(e, ensure_ascii=False) for e in fixtures))
        f.write("\n  ]\n}\n")
    rows = ["| file | stands for | container | codec | rate | ch | ffprobe duration, samples (ms) "
            "| pre-skip | ffmpeg decodes, samples (ms) | duration_ms ± tolerance | bytes | command |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in fixtures:
        mm = e["measured"]
        rows.append("| " + " | ".join(md_cell(x) for x in (
            f"`{e['file']}`", e["stands_for"], e["container"], e["codec"], e["sample_rate"],
            e["channels"], probe_duration_text(e), e.get("pre_skip", "–"),
            f"{mm['ffmpeg_decoded_samples']} ({mm['ffmpeg_decoded_ms']:.1f})",
            f"{e['duration_ms']} ± {e['tolerance_ms']:g} ({e['tolerance_basis']})"
            + (" truncated" if e.get("truncated") else ""),
            e["bytes"])) + f" | `{md_cell(e['command'])}` |")
    total = sum(e["bytes"] for e in fixtures)
    table = "\n".join(rows) + f"\n\nTotal: {len(fixtures)} files, {total} bytes of recordings.\n"
    used = sorted({e["tolerance_basis"] for e in fixtures}, key=list(TOLERANCE_BASES).index)
    table += "\nTolerance bases (`tolerance_basis` in fixtures.json):\n\n| basis | why |\n|---|---|\n"
    table += "".join(f"| `{k}` | {md_cell(TOLERANCE_BASES[k])} |\n" for k in used)
    readme = os.path.join(args.dir, "README.md")
    text = open(readme).read() if os.path.exists(readme) else f"{MARK_START}\n{MARK_END}\n"
    if MARK_START not in text or MARK_END not in text:
        sys.exit("manifest: README.md lacks the table markers")
    head, rest = text.split(MARK_START, 1)
    _, tail = rest.split(MARK_END, 1)
    with open(readme, "w") as f:
        f.write(head + MARK_START + "\n" + table + MARK_END + tail)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("wav")
    s.add_argument("out")
    s.add_argument("--rate", type=int, required=True)
    s.add_argument("--channels", type=int, required=True)
    s.add_argument("--bits", type=int, required=True)
    s.add_argument("--format", choices=["pcm", "float", "extensible"], required=True)
    s.set_defaults(fn=cmd_wav)
    s = sub.add_parser("size-fields")
    s.add_argument("input")
    s.add_argument("output")
    s.add_argument("value")
    s.set_defaults(fn=cmd_size_fields)
    s = sub.add_parser("ebml")
    s.add_argument("file")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_ebml)
    s = sub.add_parser("cut-webm")
    s.add_argument("input")
    s.add_argument("output")
    s.set_defaults(fn=cmd_cut_webm)
    s = sub.add_parser("lace-webm")
    s.add_argument("input")
    s.add_argument("output")
    s.set_defaults(fn=cmd_lace_webm)
    s = sub.add_parser("mp4")
    s.add_argument("file")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_mp4)
    s = sub.add_parser("note")
    s.add_argument("--notes", required=True)
    s.add_argument("--file", required=True)
    s.add_argument("--source", required=True)
    s.add_argument("--span", help="START,END in ms of the source that the file holds")
    s.add_argument("--duration-ms", required=True)
    s.add_argument("--tolerance-ms", required=True)
    s.add_argument("--tolerance-basis", required=True, choices=sorted(TOLERANCE_BASES))
    s.add_argument("--stands-for", required=True)
    s.add_argument("--command", required=True)
    s.add_argument("--truncated", action="store_true")
    s.set_defaults(fn=cmd_note)
    s = sub.add_parser("verify")
    s.add_argument("--dir", required=True)
    s.add_argument("--min-r", type=float, default=0.9)
    s.set_defaults(fn=cmd_verify)
    s = sub.add_parser("decoded-ms")
    s.add_argument("file")
    s.set_defaults(fn=cmd_decoded_ms)
    s = sub.add_parser("manifest")
    s.add_argument("--dir", required=True)
    s.add_argument("--notes")
    s.set_defaults(fn=cmd_manifest)
    args = p.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
