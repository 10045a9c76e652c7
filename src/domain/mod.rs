//! The ground floor: the jobs that travel down the upstream stacks and the results they bring
//! back, shared by `cache`, `middleware`, `upstream`, `analysis` and `stacks` alike; and the
//! speech domain's own logic ([`reading`]: whole readings cut, aligned and scored as one).

pub mod jobs;
pub mod provider;
pub mod reading;
pub mod served;
pub mod speech;
