use tower::Layer;

use super::service::AudioBudgetService;
use crate::audio::budget::AudioBudget;

#[derive(Clone)]
pub struct AudioBudgetLayer {
    budget: AudioBudget,
    /// `AUDIO_MAX_BYTES`: what a request that does not declare its length may still bring.
    audio_max_bytes: usize,
}

impl AudioBudgetLayer {
    pub fn new(budget: AudioBudget, audio_max_bytes: usize) -> Self {
        Self { budget, audio_max_bytes }
    }
}

impl<S> Layer<S> for AudioBudgetLayer {
    type Service = AudioBudgetService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AudioBudgetService::new(inner, self.budget.clone(), self.audio_max_bytes)
    }
}
