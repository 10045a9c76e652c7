//! Test recordings built in code, so no binary fixtures are needed.
#![allow(dead_code)] // each test binary uses a different part of this

/// A short 16 kHz mono 16-bit PCM WAV with a square-wave tone (not silence).
pub fn wav_tone(samples: usize) -> Vec<u8> {
    let data_len = (samples * 2) as u32;
    let mut wav = Vec::with_capacity(44 + samples * 2);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&16_000u32.to_le_bytes());
    wav.extend_from_slice(&32_000u32.to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..samples {
        let sample = if (i / 20) % 2 == 0 { 6000i16 } else { -6000i16 };
        wav.extend_from_slice(&sample.to_le_bytes());
    }
    wav
}

/// `samples` of 16 kHz mono 16-bit PCM silence.
pub fn wav_silence(samples: usize) -> Vec<u8> {
    let mut wav = wav_tone(samples);
    wav[44..].fill(0);
    wav
}
