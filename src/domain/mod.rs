//! The ground floor: the jobs that travel down the upstream stacks and the results they bring
//! back, shared by `cache`, `middleware`, `upstream`, `analysis` and `stacks` alike.

pub mod jobs;
pub mod served;
pub mod speech;
pub mod provider;
