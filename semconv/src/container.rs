//! Attribution: which container and pod a record concerns, from its cgroup.

names! {
    /// Container id (64 hex), parsed from the cgroup path.
    Attribute CONTAINER_ID = "container.id", "string";
    /// Container runtime: `docker`, `containerd`, `cri-o` or `podman`, when the cgroup path says.
    Attribute CONTAINER_RUNTIME_NAME = "container.runtime.name", "string";
    /// Kubernetes pod UID, parsed from a kubepods cgroup path.
    Attribute K8S_POD_UID = "k8s.pod.uid", "string";
    /// Kubernetes QoS class of the pod from its cgroup path: `guaranteed`, `burstable`, `besteffort`.
    Attribute K8S_POD_QOS = "huatuo.k8s.pod.qos", "string";
}
