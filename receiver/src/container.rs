//! Container and pod identity from a cgroup path, for the naming schemes of docker, containerd,
//! CRI-O and podman, with the cgroupfs and systemd cgroup drivers, with or without Kubernetes.
//!
//! Examples of what is recognised (ids shortened):
//! - docker: `/docker/<id>`, `/system.slice/docker-<id>.scope`
//! - containerd: `/kubepods/burstable/pod<uid>/<id>`,
//!   `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<u_i_d>.slice/cri-containerd-<id>.scope`,
//!   `/system.slice/nerdctl-<id>.scope`, `/default/<id>` (nerdctl, cgroupfs)
//! - CRI-O: `.../crio-<id>.scope`, `.../pod<uid>/crio-<id>` (`crio-conmon-<id>.scope` is its
//!   monitor, not the container)
//! - podman: `/machine.slice/libpod-<id>.scope`, rootless `.../user.slice/libpod-<id>.scope`

use std::path::{Path, PathBuf};

/// A cgroup directory whose path names a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerDir {
    pub id: String,
    /// Relative to the hierarchy's mount, as `/proc/<pid>/cgroup` shows it.
    pub path: String,
    pub dir: PathBuf,
}

/// The container cgroups of the hierarchy mounted at `root`: the outermost directories whose
/// path names a container (their sub-cgroups belong to them). The walk visits at most
/// `max_visited` directories; the flag says whether it stopped there.
pub fn container_dirs(root: &Path, max_visited: usize) -> (Vec<ContainerDir>, bool) {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    let mut visited = 0;
    while let Some(dir) = pending.pop() {
        visited += 1;
        if visited > max_visited {
            return (found, true);
        }
        let path = format!("/{}", dir.strip_prefix(root).unwrap_or(&dir).display());
        match parse_cgroup_path(&path).container_id {
            Some(id) => found.push(ContainerDir { id, path, dir }),
            None => pending.extend(crate::procfs::subdirectories(&dir)),
        }
    }
    (found, false)
}

/// What a cgroup path says about the container it belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerIdentity {
    /// Full 64-hex container id.
    pub container_id: Option<String>,
    /// OTel `container.runtime.name` values: `docker`, `containerd`, `cri-o`, `podman`.
    pub runtime: Option<&'static str>,
    /// Kubernetes pod UID, with dashes.
    pub pod_uid: Option<String>,
    /// Kubernetes QoS class: `guaranteed`, `burstable`, `besteffort`.
    pub qos: Option<&'static str>,
}

impl ContainerIdentity {
    pub fn is_empty(&self) -> bool {
        self.container_id.is_none() && self.pod_uid.is_none()
    }
}

/// Parses a cgroup path (v1 or v2, relative to the hierarchy's mount point).
pub fn parse_cgroup_path(path: &str) -> ContainerIdentity {
    let mut identity = ContainerIdentity::default();
    let mut in_kubepods = false;
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        if segment == "kubepods" || segment == "kubepods.slice" {
            in_kubepods = true;
            identity.qos = Some("guaranteed");
            continue;
        }
        if in_kubepods {
            if let Some(qos) = qos_of(segment) {
                identity.qos = Some(qos);
            }
            if let Some(uid) = pod_uid_of(segment) {
                identity.pod_uid = Some(uid);
                continue;
            }
        }
        if let Some((runtime, id)) = container_of(segment) {
            identity.container_id = Some(id.to_string());
            identity.runtime = runtime.or(identity.runtime);
        }
    }
    if identity.pod_uid.is_none() {
        identity.qos = None;
    }
    identity
}

fn qos_of(segment: &str) -> Option<&'static str> {
    let name = segment.strip_suffix(".slice").unwrap_or(segment);
    let name = name.strip_prefix("kubepods-").unwrap_or(name);
    match name {
        "burstable" => Some("burstable"),
        "besteffort" => Some("besteffort"),
        _ => None,
    }
}

/// `pod<uid>` (cgroupfs) or `kubepods[-<qos>]-pod<uid with _>.slice` (systemd).
fn pod_uid_of(segment: &str) -> Option<String> {
    let name = segment.strip_suffix(".slice").unwrap_or(segment);
    let uid = name
        .rsplit_once("-pod")
        .map(|(_, uid)| uid)
        .or_else(|| name.strip_prefix("pod"))?;
    let uid = uid.replace('_', "-");
    let is_uid = uid.len() == 36
        && uid.chars().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    is_uid.then_some(uid)
}

/// A container segment: `<prefix>-<id>.scope` (systemd driver) or `<prefix>-<id>` (CRI-O with
/// cgroupfs) with a known runtime prefix, or a bare 64-hex id (cgroupfs drivers of docker and
/// containerd, whose runtime the path does not say).
fn container_of(segment: &str) -> Option<(Option<&'static str>, &str)> {
    const PREFIXES: [(&str, &str); 6] = [
        ("docker-", "docker"),
        ("cri-containerd-", "containerd"),
        ("nerdctl-", "containerd"),
        ("crio-", "cri-o"),
        ("libpod-", "podman"),
        ("cri-o-", "cri-o"),
    ];
    let name = segment.strip_suffix(".scope").unwrap_or(segment);
    for (prefix, runtime) in PREFIXES {
        if let Some(id) = name.strip_prefix(prefix) {
            // Monitors (conmon) live beside the container under a similar name.
            return is_container_id(id).then_some((Some(runtime), id));
        }
    }
    is_container_id(segment).then_some((None, segment))
}

fn is_container_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4b2a9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a";
    const UID: &str = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b";

    fn parsed(path: &str) -> ContainerIdentity {
        parse_cgroup_path(path)
    }

    #[test]
    fn docker_with_both_drivers() {
        for path in [
            format!("/docker/{ID}"),
            format!("/system.slice/docker-{ID}.scope"),
        ] {
            let id = parsed(&path);
            assert_eq!(id.container_id.as_deref(), Some(ID), "{path}");
            assert_eq!(id.pod_uid, None);
            assert_eq!(id.qos, None);
        }
        assert_eq!(
            parsed(&format!("/system.slice/docker-{ID}.scope")).runtime,
            Some("docker")
        );
    }

    #[test]
    fn kubernetes_containerd_systemd_driver() {
        let uid = UID.replace('-', "_");
        let path = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid}.slice/cri-containerd-{ID}.scope"
        );
        let id = parsed(&path);
        assert_eq!(id.container_id.as_deref(), Some(ID));
        assert_eq!(id.runtime, Some("containerd"));
        assert_eq!(id.pod_uid.as_deref(), Some(UID));
        assert_eq!(id.qos, Some("burstable"));
    }

    #[test]
    fn kubernetes_cgroupfs_driver_and_guaranteed_qos() {
        let id = parsed(&format!("/kubepods/pod{UID}/{ID}"));
        assert_eq!(id.container_id.as_deref(), Some(ID));
        assert_eq!(id.runtime, None);
        assert_eq!(id.pod_uid.as_deref(), Some(UID));
        assert_eq!(id.qos, Some("guaranteed"));

        let id = parsed(&format!("/kubepods/besteffort/pod{UID}/{ID}"));
        assert_eq!(id.qos, Some("besteffort"));
        // The pod's own cgroup (sandbox level) has a pod but no container.
        let pod = parsed(&format!("/kubepods/besteffort/pod{UID}"));
        assert_eq!(
            (pod.pod_uid.as_deref(), pod.container_id),
            (Some(UID), None)
        );
    }

    #[test]
    fn crio_and_its_monitor() {
        let uid = UID.replace('-', "_");
        let base = format!("/kubepods.slice/kubepods-pod{uid}.slice");
        let id = parsed(&format!("{base}/crio-{ID}.scope"));
        assert_eq!(
            (id.container_id.as_deref(), id.runtime),
            (Some(ID), Some("cri-o"))
        );
        assert_eq!(id.qos, Some("guaranteed"));
        let cgroupfs = parsed(&format!("/kubepods/burstable/pod{UID}/crio-{ID}"));
        assert_eq!(
            (cgroupfs.container_id.as_deref(), cgroupfs.runtime),
            (Some(ID), Some("cri-o"))
        );
        let conmon = parsed(&format!("{base}/crio-conmon-{ID}.scope"));
        assert_eq!(conmon.container_id, None);
        assert_eq!(conmon.pod_uid.as_deref(), Some(UID));
    }

    #[test]
    fn podman_rootful_and_rootless() {
        for path in [
            format!("/machine.slice/libpod-{ID}.scope"),
            format!("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"),
            format!("/machine.slice/libpod-{ID}.scope/container"),
        ] {
            let id = parsed(&path);
            assert_eq!(
                (id.container_id.as_deref(), id.runtime),
                (Some(ID), Some("podman")),
                "{path}"
            );
        }
        assert_eq!(
            parsed(&format!("/machine.slice/libpod-conmon-{ID}.scope")).container_id,
            None
        );
    }

    #[test]
    fn nerdctl_and_plain_services_are_told_apart() {
        assert_eq!(
            parsed(&format!("/system.slice/nerdctl-{ID}.scope")).runtime,
            Some("containerd")
        );
        assert_eq!(
            parsed(&format!("/default/{ID}")).container_id.as_deref(),
            Some(ID)
        );
        for path in [
            "/",
            "/system.slice/sshd.service",
            "/user.slice/user-0.slice/session-3.scope",
            "/kubepods.slice",
        ] {
            assert!(parsed(path).is_empty(), "{path}");
        }
        // Not an id: wrong length or upper-case hex.
        assert!(parsed(&format!("/docker/{}", &ID[1..])).is_empty());
        assert!(parsed(&format!("/docker/{}", ID.to_uppercase())).is_empty());
    }
}
