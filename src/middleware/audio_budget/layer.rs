use tower::Layer;

use super::service::AudioBudgetService;
use crate::audio::budget::AudioBudget;

#[derive(Clone)]
pub struct AudioBudgetLayer {
    budget: AudioBudget,
}

impl AudioBudgetLayer {
    pub fn new(budget: AudioBudget) -> Self {
        Self { budget }
    }
}

impl<S> Layer<S> for AudioBudgetLayer {
    type Service = AudioBudgetService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AudioBudgetService::new(inner, self.budget.clone())
    }
}
