//! `lab`: runs the whole otel-lab on one machine as local processes — what `make run` calls.
//!
//! In the lab's diagram it plays every piece of infrastructure: it starts the collector
//! gateway, the Kubernetes node's agent and the ECS task's sidecar collector, then
//! inventory-service (as an EC2 instance, straight to the gateway), payment-service (as an
//! ECS task, through its sidecar), the fraud-check Lambda (under `lambda-emulator`) and
//! order-service (as a Kubernetes pod, through the agent), each with the environment and
//! resource attributes its platform would give it; then Prometheus and Grafana when they are
//! installed. Every process is described by one line of [`processes::PROCESSES`]; [`plan`]
//! checks ports, binaries and configs before anything starts; [`supervisor`] runs each child
//! with its output prefixed on the terminal and kept in `.lab/logs/`; [`up`] sequences
//! startup, health checks and the reverse-order shutdown that lets the last spans drain.
//!
//! Beside `lab up`, two commands work on a running lab for the workshop (docs/workshop/):
//! [`fault`] (`lab fault`) shows and changes each workload's fault injection, and [`check`]
//! (`lab check MODULE`) verifies a module's exercise against the lab's real interfaces;
//! [`incident`] (`lab incident --seed N`) hides problems for the final exercise.

pub mod check;
pub mod console;
pub mod dead_letters;
pub mod fault;
pub mod incident;
pub mod layout;
pub mod plan;
pub mod processes;
pub mod supervisor;
pub mod up;
