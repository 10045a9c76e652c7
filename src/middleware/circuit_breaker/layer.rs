use tower::Layer;

use super::breaker::Breaker;
use super::service::CircuitBreaker;

/// Guards a service with a breaker. Every service this layer builds shares the breaker's
/// state, so clones made per request or per connection all see one circuit.
#[derive(Clone)]
pub struct CircuitBreakerLayer {
    breaker: Breaker,
}

impl CircuitBreakerLayer {
    pub fn new(breaker: Breaker) -> Self {
        Self { breaker }
    }
}

impl<S> Layer<S> for CircuitBreakerLayer {
    type Service = CircuitBreaker<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreaker::new(inner, self.breaker.clone())
    }
}
