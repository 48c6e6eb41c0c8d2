//! Attribution: which container and pod a record concerns, from its cgroup (or, for network
//! records without an owning task, its network namespace), and from the kubelet when enabled.

names! {
    /// Container id (64 hex), parsed from the cgroup path.
    Attribute CONTAINER_ID = "container.id", "string";
    /// Container runtime: `docker`, `containerd`, `cri-o` or `podman`, when the cgroup path says.
    Attribute CONTAINER_RUNTIME_NAME = "container.runtime.name", "string";
    /// Kubernetes pod UID, parsed from a kubepods cgroup path.
    Attribute K8S_POD_UID = "k8s.pod.uid", "string";
    /// Kubernetes QoS class of the pod from its cgroup path (or the kubelet): `guaranteed`, `burstable`, `besteffort`.
    Attribute K8S_POD_QOS = "huatuo.k8s.pod.qos", "string";
    /// Pod name, from the kubelet's pod list (`[attribution.kubelet]`).
    Attribute K8S_POD_NAME = "k8s.pod.name", "string";
    /// Pod namespace, from the kubelet's pod list.
    Attribute K8S_NAMESPACE_NAME = "k8s.namespace.name", "string";
    /// Container name in its pod spec, from the kubelet's pod list.
    Attribute K8S_CONTAINER_NAME = "k8s.container.name", "string";
    /// Role of the container in its pod (HuaTuo's container type): `normal`, `init`, `sidecar` (restartable init container or `istio-proxy`), `ephemeral`, `sandbox` (the pod's infrastructure container), or for the whole pod `daemonset` / `static` when that is how it was created.
    Attribute K8S_CONTAINER_TYPE = "huatuo.k8s.container.type", "string";
    /// Where the container of a record came from: `cgroup` (its task's or socket owner's cgroup, or the memory cgroup for OOM kills) `task` (the v1 cgroups of the record's task in `/proc/<tid>/cgroup`, on v1 and hybrid hosts where the unified cgroup names no container) or `netns` (the network namespace, for network records without an owning task).
    Attribute ATTRIBUTION_SOURCE = "huatuo.attribution.source", "string";
}
