//! The one thing read from WebM/Matroska elements by hand: the last block's `DiscardPadding`.
//!
//! An Opus encoder pads the last packet to a whole frame; WebM writers (ffmpeg, Firefox) say how
//! much with `DiscardPadding` on the last block, in nanoseconds. The demuxer does not pass it on,
//! and without it a recording measures up to one frame (20 ms, 60 ms from Chrome) longer than
//! the learner spoke, and the Ogg stream sent on would promise that silence too.
//!
//! The scan walks element headers in file order, stepping into Segment, Cluster and BlockGroup
//! (whose size may be unknown in MediaRecorder's live shape: their children simply follow) and
//! over everything else by its size, so bytes inside a block are never read as elements.

const SEGMENT: u32 = 0x1853_8067;
const CLUSTER: u32 = 0x1F43_B675;
const BLOCK_GROUP: u32 = 0xA0;
const SIMPLE_BLOCK: u32 = 0xA3;
const DISCARD_PADDING: u32 = 0x75A2;

/// 48 kHz samples of padding on the file's last block, when it says.
pub fn end_padding(bytes: &[u8]) -> Option<u64> {
    let mut at = 0usize;
    let mut padding = None;
    while let Some((id, size, body)) = element(bytes, at) {
        match id {
            SEGMENT | CLUSTER | BLOCK_GROUP => {
                // A later block makes an earlier block's padding not the end's.
                if id == BLOCK_GROUP {
                    padding = None;
                }
                at = body;
                continue;
            }
            SIMPLE_BLOCK => padding = None,
            DISCARD_PADDING => {
                let value = bytes.get(body..body + size?)?;
                let nanoseconds = value.iter().fold(0i64, |value, &byte| (value << 8) | i64::from(byte));
                // Signed, of the width the element has.
                let bits = 8 * value.len() as u32;
                let nanoseconds =
                    if bits > 0 && bits < 64 { (nanoseconds << (64 - bits)) >> (64 - bits) } else { nanoseconds };
                padding = u64::try_from(nanoseconds).ok().map(|ns| ns * 48 / 1_000_000);
            }
            _ => {}
        }
        // An element of unknown size other than the ones stepped into ends the scan.
        at = body.checked_add(size?)?;
    }
    padding
}

/// The element at `at`: its ID, its size (`None`: unknown), and where its body starts.
fn element(bytes: &[u8], at: usize) -> Option<(u32, Option<usize>, usize)> {
    let first = *bytes.get(at)?;
    let id_len = first.leading_zeros() as usize + 1;
    if id_len > 4 {
        return None;
    }
    let id = bytes.get(at..at + id_len)?.iter().fold(0u32, |id, &byte| (id << 8) | u32::from(byte));
    let size_at = at + id_len;
    let marker = *bytes.get(size_at)?;
    let size_len = marker.leading_zeros() as usize + 1;
    if size_len > 8 {
        return None;
    }
    let raw = bytes.get(size_at..size_at + size_len)?;
    let mask = if size_len == 8 { 0 } else { 0xFFu8 >> size_len };
    let value = raw[1..].iter().fold(u64::from(marker & mask), |value, &byte| (value << 8) | u64::from(byte));
    // All value bits set is the reserved "unknown size".
    let unknown = value == (1u64 << (7 * size_len)) - 1;
    let size = if unknown { None } else { usize::try_from(value).ok() };
    Some((id, size, size_at + size_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Segment and Cluster of unknown size (MediaRecorder's live shape), two blocks, the last in
    /// a BlockGroup with `DiscardPadding` of `padding` (4-byte signed, nanoseconds).
    fn live_webm(padding: i32) -> Vec<u8> {
        let mut file = vec![0x1A, 0x45, 0xDF, 0xA3, 0x80];
        file.extend([0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        file.extend([0x1F, 0x43, 0xB6, 0x75, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        // A SimpleBlock whose data holds bytes that look like a DiscardPadding element.
        file.extend([0xA3, 0x88, 0x81, 0, 0, 0x80, 0x75, 0xA2, 0x81, 0x7F]);
        file.extend([0xA0, 0x8E, 0xA1, 0x85, 0x81, 0, 0x14, 0x80, 0xF8, 0x75, 0xA2, 0x84]);
        file.extend(padding.to_be_bytes());
        file
    }

    #[test]
    fn the_last_blocks_padding_is_read_through_unknown_sizes() {
        // 13.5 ms = 648 samples, what ffmpeg writes for a 2.8 s recording.
        assert_eq!(end_padding(&live_webm(13_500_000)), Some(648));
    }

    #[test]
    fn no_padding_or_a_negative_one_is_nothing_to_trim() {
        let mut file = live_webm(0);
        file.truncate(file.len() - 16);
        assert_eq!(end_padding(&file), None, "a block's bytes are not elements");
        assert_eq!(end_padding(&live_webm(-5)), None);
        assert_eq!(end_padding(b""), None);
        assert_eq!(end_padding(&[0x00, 0x00, 0x00]), None);
    }
}
