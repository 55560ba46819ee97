//! What the global rebalancer decides over, worked out with the placement filters so that no rule
//! is written twice: which bound pods may move (and why the others may not), classes of
//! interchangeable pods, the nodes each class may go to, and how many pods each
//! PodDisruptionBudget lets go. The optimisation model is built in Python from a [`Problem`];
//! the heuristics that start it are here: the packing heuristic ([`drain`]) and the greedy starts
//! for balance and defrag ([`greedy`]).

pub mod budgets;
pub mod drain;
pub mod greedy;
pub mod interpod;
pub mod pins;
pub mod problem;

pub use budgets::{budgets, Budget};
pub use drain::{drain, DrainOptions, Move, Plan};
pub use interpod::{inter_pod, Domains, InterPod, Rule, RuleKind};
pub use pins::{pin, Pin, PinOptions};
pub use problem::{problem, Class, Problem};
