//! RFC 6381 codec strings derived from the encoders' real bitstream headers,
//! so CODECS in the master playlist cannot drift from what was encoded.

/// `avc1.PPCCLL` from H.264 extradata, either avcC (starts with 1) or Annex B.
pub fn avc1_from_extradata(extra: &[u8]) -> Option<String> {
    if extra.len() >= 4 && extra[0] == 1 {
        return Some(format!("avc1.{:02x}{:02x}{:02x}", extra[1], extra[2], extra[3]));
    }
    // Annex B: find the SPS NAL (type 7) after a start code.
    let mut i = 0;
    while i + 3 < extra.len() {
        if extra[i] == 0 && extra[i + 1] == 0 && extra[i + 2] == 1 {
            let nal = i + 3;
            if extra[nal] & 0x1f == 7 && nal + 3 < extra.len() {
                return Some(format!("avc1.{:02x}{:02x}{:02x}", extra[nal + 1], extra[nal + 2], extra[nal + 3]));
            }
            i = nal;
        } else {
            i += 1;
        }
    }
    None
}

/// `mp4a.40.N` from an AudioSpecificConfig (N = audio object type, 2 = AAC-LC).
pub fn mp4a_from_extradata(extra: &[u8]) -> Option<String> {
    let aot = extra.first()? >> 3;
    (aot != 0).then(|| format!("mp4a.40.{aot}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    #[test]
    fn avc_annexb_and_avcc() {
        let annexb = [0, 0, 0, 1, 0x67, 0x64, 0x00, 0x1f, 0xac, 0, 0, 0, 1, 0x68, 0xeb];
        assert_eq!(avc1_from_extradata(&annexb).as_deref(), Some("avc1.64001f"));
        let avcc = [1, 0x4d, 0x40, 0x1e, 0xff];
        assert_eq!(avc1_from_extradata(&avcc).as_deref(), Some("avc1.4d401e"));
        assert_eq!(avc1_from_extradata(&[0, 0, 1, 0x68, 1, 2, 3]), None);
    }

    #[test]
    fn aac_object_type() {
        // 0x11 0x90: AOT 2 (LC), 48 kHz, stereo
        assert_eq!(mp4a_from_extradata(&[0x11, 0x90]).as_deref(), Some("mp4a.40.2"));
        assert_eq!(mp4a_from_extradata(&[]), None);
    }
}
