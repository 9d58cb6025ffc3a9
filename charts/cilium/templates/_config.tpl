{{/*
The data of the cilium-config ConfigMap, as YAML. Built as a dictionary so that extraConfig,
merged last, replaces any key the chart sets instead of duplicating it. The agent deployment
includes this template's checksum, so keep every input of cilium-config in here.
*/}}
{{- define "cilium.config.data" -}}
{{- $v := .Values -}}
{{- $is118 := eq (include "cilium.is118" .) "true" -}}
{{- $compat := include "cilium.compatVersion" . -}}
{{- $kpr := include "cilium.kubeProxyReplacement" . -}}
{{- $ipam := $v.ipam.mode | default "cluster-pool" -}}
{{- $routing := $v.routingMode | default "tunnel" -}}
{{- $d := dict -}}

{{- /* Identities and the operator's garbage collection */ -}}
{{- $_ := set $d "identity-allocation-mode" $v.identityAllocationMode -}}
{{- $_ := set $d "identity-heartbeat-timeout" (include "cilium.duration" (list "operator.identityHeartbeatTimeout" $v.operator.identityHeartbeatTimeout)) -}}
{{- $_ := set $d "identity-gc-interval" (include "cilium.duration" (list "operator.identityGCInterval" $v.operator.identityGCInterval)) -}}
{{- $_ := set $d "cilium-endpoint-gc-interval" (include "cilium.duration" (list "operator.endpointGCInterval" $v.operator.endpointGCInterval)) -}}
{{- $_ := set $d "nodes-gc-interval" (include "cilium.duration" (list "operator.nodeGCInterval" $v.operator.nodeGCInterval)) -}}
{{- if not (kindIs "invalid" $v.labels) -}}
{{- $_ := set $d "labels" (toString $v.labels) -}}
{{- end -}}
{{- if $is118 -}}
{{- $_ := set $d "identity-management-mode" "agent" -}}
{{- end -}}

{{- /* Logging and health */ -}}
{{- $_ := set $d "debug" (toString $v.debug.enabled) -}}
{{- if $v.debug.verbose -}}
{{- $_ := set $d "debug-verbose" (toString $v.debug.verbose) -}}
{{- end -}}
{{- if ne (int $v.healthPort) 9879 -}}
{{- $_ := set $d "agent-health-port" (toString $v.healthPort) -}}
{{- end -}}
{{- $_ := set $d "enable-policy" (lower $v.policyEnforcementMode) -}}

{{- /* Metrics */ -}}
{{- if $v.prometheus.enabled -}}
{{- $_ := set $d "prometheus-serve-addr" (printf ":%v" $v.prometheus.port) -}}
{{- with $v.prometheus.metrics -}}
{{- $_ := set $d "metrics" (join " " .) -}}
{{- end -}}
{{- with $v.prometheus.controllerGroupMetrics -}}
{{- $_ := set $d "controller-group-metrics" (join " " .) -}}
{{- end -}}
{{- end -}}
{{- if and $v.l7Proxy $v.envoy.prometheus.enabled -}}
{{- $_ := set $d "proxy-prometheus-port" (toString $v.envoy.prometheus.port) -}}
{{- end -}}
{{- if $v.operator.prometheus.enabled -}}
{{- $_ := set $d "operator-prometheus-serve-addr" (printf ":%v" $v.operator.prometheus.port) -}}
{{- $_ := set $d "enable-metrics" "true" -}}
{{- end -}}
{{- $_ := set $d "operator-api-serve-addr" ($v.ipv4.enabled | ternary "127.0.0.1:9234" "[::1]:9234") -}}
{{- if $v.operator.skipCRDCreation -}}
{{- $_ := set $d "skip-crd-creation" "true" -}}
{{- end -}}

{{- /* Secrets referenced by policies */ -}}
{{- if eq (include "cilium.secretsNamespaceOnly" .) "true" -}}
{{- $_ := set $d "policy-secrets-only-from-secrets-namespace" "true" -}}
{{- $_ := set $d "policy-secrets-namespace" $v.tls.secretsNamespace.name -}}
{{- if eq (include "cilium.secretSync" .) "true" -}}
{{- $_ := set $d "enable-policy-secrets-sync" "true" -}}
{{- end -}}
{{- end -}}

{{- /* Addressing and IPAM */ -}}
{{- $_ := set $d "enable-ipv4" (toString $v.ipv4.enabled) -}}
{{- $_ := set $d "enable-ipv6" (toString $v.ipv6.enabled) -}}
{{- $_ := set $d "ipam" $ipam -}}
{{- $_ := set $d "ipam-cilium-node-update-rate" (include "cilium.duration" (list "ipam.ciliumNodeUpdateRate" $v.ipam.ciliumNodeUpdateRate)) -}}
{{- if eq $ipam "cluster-pool" -}}
{{- if $v.ipv4.enabled -}}
{{- $_ := set $d "cluster-pool-ipv4-cidr" (join " " $v.ipam.operator.clusterPoolIPv4PodCIDRList) -}}
{{- $_ := set $d "cluster-pool-ipv4-mask-size" (toString $v.ipam.operator.clusterPoolIPv4MaskSize) -}}
{{- end -}}
{{- if $v.ipv6.enabled -}}
{{- $_ := set $d "cluster-pool-ipv6-cidr" (join " " $v.ipam.operator.clusterPoolIPv6PodCIDRList) -}}
{{- $_ := set $d "cluster-pool-ipv6-mask-size" (toString $v.ipam.operator.clusterPoolIPv6MaskSize) -}}
{{- end -}}
{{- end -}}
{{- if $v.eni.enabled -}}
{{- $_ := set $d "enable-endpoint-routes" "true" -}}
{{- $_ := set $d "auto-create-cilium-node-resource" "true" -}}
{{- end -}}

{{- /* Cluster */ -}}
{{- if not (regexMatch "^([a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?)$" (toString $v.cluster.name)) -}}
{{- fail (printf "cluster.name %q must be at most 32 lower-case alphanumerics or dashes, starting and ending alphanumeric" (toString $v.cluster.name)) -}}
{{- end -}}
{{- if and (eq (toString $v.cluster.name) "default") (ne (int $v.cluster.id) 0) -}}
{{- fail "cluster.name must not be \"default\" when cluster.id is not 0" -}}
{{- end -}}
{{- $_ := set $d "cluster-name" (toString $v.cluster.name) -}}
{{- $_ := set $d "cluster-id" (toString (int $v.cluster.id)) -}}

{{- /* Routing, encapsulation and masquerading */ -}}
{{- $_ := set $d "routing-mode" $routing -}}
{{- $_ := set $d "tunnel-protocol" ($v.tunnelProtocol | default "vxlan") -}}
{{- $_ := set $d "tunnel-source-port-range" "0-0" -}}
{{- $masq4 := true -}}
{{- if not (kindIs "invalid" $v.enableIPv4Masquerade) -}}
{{- $masq4 = $v.enableIPv4Masquerade -}}
{{- else if and $v.eni.enabled $is118 (semverCompare ">=1.18" $compat) -}}
{{- /* 1.18 turned masquerading off in ENI mode; older installs keep it on. */ -}}
{{- $masq4 = false -}}
{{- end -}}
{{- $_ := set $d "enable-ipv4-masquerade" (toString $masq4) -}}
{{- $_ := set $d "enable-ipv6-masquerade" (toString $v.enableIPv6Masquerade) -}}
{{- if not (kindIs "invalid" $v.bpf.masquerade) -}}
{{- $_ := set $d "enable-bpf-masquerade" (toString $v.bpf.masquerade) -}}
{{- end -}}
{{- if eq $routing "native" -}}
{{- if and $v.ipv4.enabled $masq4 (ne $ipam "eni") (not $v.ipv4NativeRoutingCIDR) -}}
{{- fail "ipv4NativeRoutingCIDR must be set when routingMode is native and IPv4 masquerading is on" -}}
{{- end -}}
{{- end -}}
{{- with $v.ipv4NativeRoutingCIDR -}}
{{- $_ := set $d "ipv4-native-routing-cidr" . -}}
{{- end -}}
{{- $_ := set $d "auto-direct-node-routes" (toString $v.autoDirectNodeRoutes) -}}
{{- $_ := set $d "direct-routing-skip-unreachable" "false" -}}
{{- if $v.MTU -}}
{{- $_ := set $d "mtu" (toString (int $v.MTU)) -}}
{{- end -}}

{{- /* Service load-balancing */ -}}
{{- $_ := set $d "kube-proxy-replacement" $kpr -}}
{{- if eq $kpr "true" -}}
{{- $_ := set $d "kube-proxy-replacement-healthz-bind-address" ($v.kubeProxyReplacementHealthzBindAddr | default "") -}}
{{- else -}}
{{- $_ := set $d "enable-node-port" "false" -}}
{{- end -}}
{{- $_ := set $d "bpf-lb-sock" "false" -}}
{{- $_ := set $d "bpf-lb-acceleration" "disabled" -}}
{{- $_ := set $d "enable-health-check-nodeport" "true" -}}
{{- $_ := set $d "enable-health-check-loadbalancer-ip" "false" -}}
{{- $_ := set $d "node-port-bind-protection" "true" -}}
{{- $_ := set $d "enable-auto-protect-node-port-range" "true" -}}
{{- $_ := set $d "enable-svc-source-range-check" "true" -}}
{{- $_ := set $d "enable-internal-traffic-policy" "true" -}}
{{- $_ := set $d "service-no-backend-response" "reject" -}}
{{- $_ := set $d "enable-lb-ipam" "true" -}}
{{- $_ := set $d "default-lb-service-ipam" "lbipam" -}}

{{- /* BPF maps and monitor */ -}}
{{- $ratio := $v.bpf.mapDynamicSizeRatio -}}
{{- if kindIs "invalid" $ratio -}}{{- $ratio = 0.0025 -}}{{- end -}}
{{- if ne (float64 $ratio) 0.0 -}}
{{- $_ := set $d "bpf-map-dynamic-size-ratio" (toString $ratio) -}}
{{- end -}}
{{- with $v.bpf.ctTcpMax -}}{{- $_ := set $d "bpf-ct-global-tcp-max" (toString (int .)) -}}{{- end -}}
{{- with $v.bpf.ctAnyMax -}}{{- $_ := set $d "bpf-ct-global-any-max" (toString (int .)) -}}{{- end -}}
{{- with $v.bpf.natMax -}}{{- $_ := set $d "bpf-nat-global-max" (toString (int .)) -}}{{- end -}}
{{- with $v.bpf.neighMax -}}{{- $_ := set $d "bpf-neigh-global-max" (toString (int .)) -}}{{- end -}}
{{- with $v.bpf.nodeMapMax -}}{{- $_ := set $d "bpf-node-map-max" (toString (int .)) -}}{{- end -}}
{{- with $v.bpf.authMapMax -}}{{- $_ := set $d "bpf-auth-map-max" (toString (int .)) -}}{{- end -}}
{{- with $v.bpf.policyMapMax -}}{{- $_ := set $d "bpf-policy-map-max" (toString (int .)) -}}{{- end -}}
{{- if $is118 -}}
{{- with $v.bpf.policyStatsMapMax -}}{{- $_ := set $d "bpf-policy-stats-map-max" (toString (int .)) -}}{{- end -}}
{{- end -}}
{{- with $v.bpf.lbMapMax -}}{{- $_ := set $d "bpf-lb-map-max" (toString (int .)) -}}{{- end -}}
{{- $_ := set $d "preallocate-bpf-maps" (toString $v.bpf.preallocateMaps) -}}
{{- $_ := set $d "bpf-root" $v.bpf.root -}}
{{- $_ := set $d "cgroup-root" $v.cgroup.hostRoot -}}
{{- $_ := set $d "monitor-aggregation" $v.bpf.monitorAggregation -}}
{{- $_ := set $d "monitor-aggregation-interval" (include "cilium.duration" (list "bpf.monitorInterval" $v.bpf.monitorInterval)) -}}
{{- $_ := set $d "monitor-aggregation-flags" $v.bpf.monitorFlags -}}
{{- $_ := set $d "bpf-events-drop-enabled" "true" -}}
{{- $_ := set $d "bpf-events-policy-verdict-enabled" "true" -}}
{{- $_ := set $d "bpf-events-trace-enabled" "true" -}}
{{- $_ := set $d "enable-tcx" "true" -}}
{{- $_ := set $d "datapath-mode" "veth" -}}
{{- if not $v.securityContext.privileged -}}
{{- $_ := set $d "procfs" "/host/proc" -}}
{{- end -}}

{{- /* CNI */ -}}
{{- $_ := set $d "custom-cni-conf" (toString $v.cni.customConf) -}}
{{- if and $v.cni.install (not $v.cni.customConf) -}}
{{- $_ := set $d "write-cni-conf-when-ready" (printf "%s/05-cilium.conflist" $v.cni.hostConfDirMountPath) -}}
{{- $_ := set $d "cni-exclusive" (toString $v.cni.exclusive) -}}
{{- $_ := set $d "cni-log-file" $v.cni.logFile -}}
{{- end -}}
{{- if $v.cni.uninstall -}}
{{- $_ := set $d "cni-uninstall" "true" -}}
{{- end -}}

{{- /* Policy and proxies */ -}}
{{- $_ := set $d "enable-l7-proxy" (toString $v.l7Proxy) -}}
{{- $_ := set $d "enable-l2-neigh-discovery" "true" -}}
{{- $_ := set $d "external-envoy-proxy" "false" -}}
{{- $_ := set $d "enable-k8s-networkpolicy" "true" -}}
{{- $_ := set $d "enable-non-default-deny-policies" "true" -}}
{{- $_ := set $d "enable-well-known-identities" "false" -}}
{{- $_ := set $d "enable-endpoint-health-checking" "true" -}}
{{- $_ := set $d "enable-health-checking" "true" -}}
{{- $_ := set $d "enable-xt-socket-fallback" "true" -}}
{{- $_ := set $d "install-no-conntrack-iptables-rules" "false" -}}
{{- $_ := set $d "synchronize-k8s-nodes" "true" -}}
{{- $_ := set $d "dnsproxy-enable-transparent-mode" "true" -}}
{{- $_ := set $d "mesh-auth-enabled" "true" -}}
{{- if $is118 -}}
{{- $_ := set $d "policy-default-local-cluster" "false" -}}
{{- end -}}

{{- /* Kubernetes client */ -}}
{{- with $v.k8sClientRateLimit.qps -}}{{- $_ := set $d "k8s-client-qps" (toString .) -}}{{- end -}}
{{- with $v.k8sClientRateLimit.burst -}}{{- $_ := set $d "k8s-client-burst" (toString .) -}}{{- end -}}
{{- with $v.k8sClientRateLimit.operator.qps -}}{{- $_ := set $d "operator-k8s-client-qps" (toString .) -}}{{- end -}}
{{- with $v.k8sClientRateLimit.operator.burst -}}{{- $_ := set $d "operator-k8s-client-burst" (toString .) -}}{{- end -}}

{{- /* Node taints and conditions managed by the operator */ -}}
{{- if and $v.operator.setNodeTaints (not $v.operator.removeNodeTaints) -}}
{{- fail "operator.setNodeTaints needs operator.removeNodeTaints" -}}
{{- end -}}
{{- if $v.operator.removeNodeTaints -}}
{{- $_ := set $d "remove-cilium-node-taints" "true" -}}
{{- end -}}
{{- if or $v.operator.setNodeTaints (and (kindIs "invalid" $v.operator.setNodeTaints) $v.operator.removeNodeTaints) -}}
{{- $_ := set $d "set-cilium-node-taints" "true" -}}
{{- end -}}
{{- if $v.operator.setNodeNetworkStatus -}}
{{- $_ := set $d "set-cilium-is-up-condition" "true" -}}
{{- end -}}
{{- $_ := set $d "unmanaged-pod-watcher-interval" ($v.operator.unmanagedPodWatcher.restart | ternary (toString $v.operator.unmanagedPodWatcher.intervalSeconds) "0") -}}

{{- /* Hubble */ -}}
{{- $_ := set $d "enable-hubble" (toString $v.hubble.enabled) -}}
{{- if $v.hubble.enabled -}}
{{- $_ := set $d "hubble-socket-path" $v.hubble.socketPath -}}
{{- if $is118 -}}
{{- $_ := set $d "hubble-network-policy-correlation-enabled" (toString $v.hubble.networkPolicyCorrelation.enabled) -}}
{{- end -}}
{{- if $v.hubble.listenAddress -}}
{{- $_ := set $d "hubble-listen-address" $v.hubble.listenAddress -}}
{{- if $v.hubble.tls.enabled -}}
{{- $_ := set $d "hubble-disable-tls" "false" -}}
{{- $_ := set $d "hubble-tls-cert-file" "/var/lib/cilium/tls/hubble/server.crt" -}}
{{- $_ := set $d "hubble-tls-key-file" "/var/lib/cilium/tls/hubble/server.key" -}}
{{- $_ := set $d "hubble-tls-client-ca-files" "/var/lib/cilium/tls/hubble/client-ca.crt" -}}
{{- else -}}
{{- $_ := set $d "hubble-disable-tls" "true" -}}
{{- end -}}
{{- end -}}
{{- with $v.hubble.metrics.enabled -}}
{{- $_ := set $d "hubble-metrics-server" (printf ":%v" $v.hubble.metrics.port) -}}
{{- $_ := set $d "hubble-metrics" (join " " .) -}}
{{- $_ := set $d "enable-hubble-open-metrics" (toString $v.hubble.metrics.enableOpenMetrics) -}}
{{- $_ := set $d "hubble-metrics-server-enable-tls" (toString $v.hubble.metrics.tls.enabled) -}}
{{- if $v.hubble.metrics.tls.enabled -}}
{{- $_ := set $d "hubble-metrics-server-tls-cert-file" "/var/lib/cilium/tls/hubble-metrics/server.crt" -}}
{{- $_ := set $d "hubble-metrics-server-tls-key-file" "/var/lib/cilium/tls/hubble-metrics/server.key" -}}
{{- if $v.hubble.metrics.tls.server.mtls.enabled -}}
{{- $_ := set $d "hubble-metrics-server-tls-client-ca-files" "/var/lib/cilium/tls/hubble-metrics/client-ca.crt" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $export := $v.hubble.export.static -}}
{{- if $export.enabled -}}
{{- $_ := set $d "hubble-export-file-path" $export.filePath -}}
{{- $_ := set $d "hubble-export-file-max-size-mb" (toString $export.fileMaxSizeMb) -}}
{{- $_ := set $d "hubble-export-file-max-backups" (toString $export.fileMaxBackups) -}}
{{- $_ := set $d "hubble-export-file-compress" (toString $export.fileCompress) -}}
{{- $_ := set $d "hubble-export-fieldmask" (join " " $export.fieldMask) -}}
{{- $_ := set $d "hubble-export-allowlist" (join " " $export.allowList) -}}
{{- $_ := set $d "hubble-export-denylist" (join " " $export.denyList) -}}
{{- end -}}
{{- end -}}

{{- /* extraConfig last: the user's word wins */ -}}
{{- range $key, $value := $v.extraConfig -}}
{{- $_ := set $d $key (toString $value) -}}
{{- end -}}
{{- toYaml $d -}}
{{- end -}}
