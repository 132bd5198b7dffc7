//! HorizontalPodAutoscalers (autoscaling/v2) for autoscaled roles and a PodDisruptionBudget
//! per role.

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, ExternalMetricSource, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerSpec, MetricIdentifier, MetricSpec, MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use logstream_crds::logstream::{Autoscaling, Bus, ScalingMetric};

use super::Ctx;
use crate::names::Component;

/// External metric the processor scales on with `kafkaConsumerLag`: the name kafka-exporter
/// exports and prometheus-adapter or KEDA serve, selected by topic and consumer group.
pub const CONSUMER_LAG_METRIC: &str = "kafka_consumergroup_lag";

pub(super) fn autoscaler(
    ctx: &Ctx<'_>,
    component: Component,
    autoscaling: &Autoscaling,
) -> HorizontalPodAutoscaler {
    let names = ctx.names;
    let resource = |name: &str, percent: i32| MetricSpec {
        type_: "Resource".into(),
        resource: Some(ResourceMetricSource {
            name: name.into(),
            target: MetricTarget {
                type_: "Utilization".into(),
                average_utilization: Some(percent),
                ..MetricTarget::default()
            },
        }),
        ..MetricSpec::default()
    };
    let metric = match autoscaling.metric {
        ScalingMetric::CpuUtilizationPercent(p) => resource("cpu", p),
        ScalingMetric::MemoryUtilizationPercent(p) => resource("memory", p),
        ScalingMetric::KafkaConsumerLag(lag) => {
            let topic = match ctx.ls.spec.bus.selected() {
                Some(Bus::Kafka(k)) => k.topic.clone(),
                _ => String::new(),
            };
            let group = names.consumer_group();
            MetricSpec {
                type_: "External".into(),
                external: Some(ExternalMetricSource {
                    metric: MetricIdentifier {
                        name: CONSUMER_LAG_METRIC.into(),
                        selector: Some(LabelSelector {
                            match_labels: Some(
                                [
                                    ("topic".to_owned(), topic),
                                    ("consumergroup".to_owned(), group),
                                ]
                                .into(),
                            ),
                            ..LabelSelector::default()
                        }),
                    },
                    target: MetricTarget {
                        type_: "AverageValue".into(),
                        average_value: Some(Quantity(lag.to_string())),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }
        }
    };
    HorizontalPodAutoscaler {
        metadata: ctx.meta(component, names.workload(component)),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "StatefulSet".into(),
                name: names.workload(component),
            },
            min_replicas: Some(autoscaling.min_replicas),
            max_replicas: autoscaling.max_replicas,
            metrics: Some(vec![metric]),
            ..HorizontalPodAutoscalerSpec::default()
        }),
        ..HorizontalPodAutoscaler::default()
    }
}

/// One pod of a role may be voluntarily evicted at a time (node drains proceed, a role never
/// loses two pods to them at once).
pub(super) fn disruption_budget(ctx: &Ctx<'_>, component: Component) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: ctx.meta(component, ctx.names.workload(component)),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(ctx.names.selector(component)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}
