//! Services: a client Service per role (what Grafana, the agent and users address) and a
//! headless Service giving the StatefulSet's pods stable DNS names.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Ctx;
use crate::names::Component;

/// The client Service `<name>-<alias>`, selecting the pods of `target` (the role itself, or the
/// embedded install's single pod standing in for it).
pub(super) fn client(ctx: &Ctx<'_>, alias: Component, target: Component) -> Service {
    Service {
        metadata: ctx.meta(alias, ctx.names.workload(alias)),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(ctx.names.selector(target)),
            ports: Some(vec![http_port(target)]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// The headless Service `<workload>-headless` of `component`'s StatefulSet. It lists pods that
/// are not ready yet too, so a replica is addressable while it starts.
pub(super) fn headless(ctx: &Ctx<'_>, component: Component) -> Service {
    Service {
        metadata: ctx.meta(component, ctx.names.headless(component)),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(ctx.names.selector(component)),
            ports: Some(vec![http_port(component)]),
            publish_not_ready_addresses: Some(true),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn http_port(component: Component) -> ServicePort {
    ServicePort {
        name: Some("http".into()),
        port: component.port(),
        target_port: Some(IntOrString::String("http".into())),
        protocol: Some("TCP".into()),
        ..ServicePort::default()
    }
}
