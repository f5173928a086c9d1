//! Short sound cues for pupil-facing results, so a child hears the answer as well as seeing it.
//! The cues are synthesised here (a few sine tones as 16-bit PCM WAV) and played by ALSA's
//! `aplay`, started per cue on a thread of its own: a missing or silent sound card never delays
//! a tap.

use std::io::Write as _;
use std::process::{Command, Stdio};

/// Samples per second of the synthesised cues.
pub const SAMPLE_RATE_HZ: u32 = 22_050;

/// The player started for each cue: ALSA's `aplay`, reading a WAV file from standard input.
pub const PLAYER_DEFAULT: &str = "aplay";

/// What a cue says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cue {
    /// Served: two rising notes.
    Served,
    /// Already served: one soft note.
    AlreadyServed,
    /// Please see staff, reader or kiosk unavailable: two level low notes, never harsh.
    SeeStaff,
}

impl Cue {
    /// `(frequency in Hz, duration in ms)` of each note.
    fn notes(self) -> &'static [(u32, u32)] {
        match self {
            Cue::Served => &[(660, 90), (880, 140)],
            Cue::AlreadyServed => &[(660, 120)],
            Cue::SeeStaff => &[(440, 120), (440, 120)],
        }
    }

    /// The cue as a complete WAV file (mono, 16-bit, [`SAMPLE_RATE_HZ`]).
    pub fn wav(self) -> Vec<u8> {
        let mut samples: Vec<i16> = Vec::new();
        for &(frequency_hz, duration_ms) in self.notes() {
            let count = SAMPLE_RATE_HZ * duration_ms / 1_000;
            // Integer synthesis: a triangle wave with a short fade in and out, no floats needed.
            let period = SAMPLE_RATE_HZ / frequency_hz;
            let fade = count / 10;
            for n in 0..count {
                let phase = n % period;
                let half = period / 2;
                let ramp = if phase < half { phase } else { period - phase };
                let wave = i32::try_from(ramp * 4 * 8_000 / period).unwrap_or(0) - 8_000;
                let envelope = n.min(count - n).min(fade);
                let scaled = wave * i32::try_from(envelope).unwrap_or(0)
                    / i32::try_from(fade.max(1)).unwrap_or(1);
                samples.push(i16::try_from(scaled).unwrap_or(0));
            }
            // A short gap between notes.
            samples.extend(std::iter::repeat_n(
                0,
                usize::try_from(SAMPLE_RATE_HZ / 50).unwrap_or(0),
            ));
        }
        wav_file(&samples)
    }
}

fn wav_file(samples: &[i16]) -> Vec<u8> {
    let data_bytes = u32::try_from(samples.len() * 2).expect("a cue is short");
    let mut wav = Vec::with_capacity(44 + samples.len() * 2);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_bytes).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&SAMPLE_RATE_HZ.to_le_bytes());
    wav.extend_from_slice(&(SAMPLE_RATE_HZ * 2).to_le_bytes()); // bytes per second
    wav.extend_from_slice(&2u16.to_le_bytes()); // bytes per frame
    wav.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_bytes.to_le_bytes());
    for sample in samples {
        wav.extend_from_slice(&sample.to_le_bytes());
    }
    wav
}

/// Plays cues with an external player reading WAV on standard input.
#[derive(Clone, Debug)]
pub struct Speaker {
    /// The player program and its arguments; none for a silent kiosk.
    command: Option<(String, Vec<String>)>,
}

impl Speaker {
    /// Plays through `aplay`.
    pub fn aplay() -> Speaker {
        Speaker::with_command(PLAYER_DEFAULT, &["-q", "-t", "wav", "-"])
    }

    /// Plays nothing.
    pub fn silent() -> Speaker {
        Speaker { command: None }
    }

    /// Plays through `program args...`, which reads a WAV file on standard input.
    pub fn with_command(program: &str, args: &[&str]) -> Speaker {
        Speaker {
            command: Some((
                program.to_owned(),
                args.iter().map(|a| (*a).to_owned()).collect(),
            )),
        }
    }

    /// Starts playing `cue` and returns at once. A player that is missing or fails is ignored:
    /// the screen carries the same answer.
    pub fn play(&self, cue: Cue) {
        let Some((program, args)) = self.command.clone() else {
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("sound-cue".into())
            .spawn(move || {
                let Ok(mut child) = Command::new(&program)
                    .args(&args)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                else {
                    return;
                };
                if let Some(mut stdin) = child.stdin.take() {
                    let _ = stdin.write_all(&cue.wav());
                }
                let _ = child.wait();
            });
        drop(spawned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cues_are_valid_wav_files_of_their_length() {
        fn check(cue: Cue, duration_ms: u32) {
            let wav = cue.wav();
            assert_eq!(&wav[0..4], b"RIFF");
            assert_eq!(&wav[8..16], b"WAVEfmt ");
            let data_bytes = u32::from_le_bytes(wav[40..44].try_into().unwrap());
            assert_eq!(usize::try_from(data_bytes).unwrap() + 44, wav.len());
            let samples = data_bytes / 2;
            let expected = SAMPLE_RATE_HZ * duration_ms / 1_000;
            assert!(
                samples.abs_diff(expected) < SAMPLE_RATE_HZ / 20,
                "{cue:?}: {samples} samples"
            );
            assert!(wav[44..].iter().any(|byte| *byte != 0), "{cue:?} is silent");
        }
        check(Cue::Served, 90 + 140 + 40);
        check(Cue::AlreadyServed, 120 + 20);
        check(Cue::SeeStaff, 240 + 40);
        assert_ne!(Cue::Served.wav(), Cue::SeeStaff.wav());
    }
}
