//! Integration tests: the built binary against fake IMDS and ACR servers on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod cache;
mod cold;
mod configure;
mod credsstore;
mod docs;
mod doctor;
mod faults;
mod firsthour;
mod front;
mod get;
mod kubelet;
mod pods;
mod principals;
mod properties;
mod sources;
