//! Fuzz target: CredentialProviderRequests with service account fields, through the pod identity policy.
#![no_main]

use docker_credential_acr::config::PodPolicy;
use docker_credential_acr::kubelet::{parse_request, pod_identity, registry_of};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(request) = parse_request(text) {
        let registry = registry_of(&request.image);
        assert!(!registry.contains('/'));
        for policy in [PodPolicy::Required, PodPolicy::Preferred, PodPolicy::Off] {
            let _ = pod_identity(&request, policy, &registry, Some("t"));
        }
    }
});
