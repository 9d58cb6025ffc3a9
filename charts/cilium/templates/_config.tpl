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
{{- $envoyDS := eq (include "cilium.envoy.daemonset" .) "true" -}}
{{- $chaining := include "cilium.cni.chainingMode" . -}}
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
{{- if not (has $v.identityManagementMode (list "agent" "operator" "both")) -}}
{{- fail (printf "identityManagementMode must be agent, operator or both, not %q" (toString $v.identityManagementMode)) -}}
{{- end -}}
{{- $_ := set $d "identity-management-mode" $v.identityManagementMode -}}
{{- end -}}

{{- /* Logging and health */ -}}
{{- $_ := set $d "debug" (toString $v.debug.enabled) -}}
{{- $_ := set $d "debug-verbose" (toString ($v.debug.verbose | default "")) -}}
{{- with $v.logOptions -}}
{{- $_ := set $d "log-opt" (toJson .) -}}
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
{{- if and $v.l7Proxy (not $envoyDS) $v.envoy.prometheus.enabled -}}
{{- $_ := set $d "proxy-prometheus-port" (toString $v.envoy.prometheus.port) -}}
{{- end -}}
{{- $_ := set $d "metrics-sampling-interval" (toString $v.debug.metricsSamplingInterval) -}}
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
{{- $_ := set $d "enable-ipv4-big-tcp" (toString $v.enableIPv4BIGTCP) -}}
{{- $_ := set $d "enable-ipv6-big-tcp" (toString $v.enableIPv6BIGTCP) -}}
{{- $_ := set $d "k8s-require-ipv4-pod-cidr" (toString $v.k8s.requireIPv4PodCIDR) -}}
{{- $_ := set $d "k8s-require-ipv6-pod-cidr" (toString $v.k8s.requireIPv6PodCIDR) -}}
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
{{- with $v.ipam.multiPoolPreAllocation -}}
{{- $_ := set $d "ipam-multi-pool-pre-allocation" (toString .) -}}
{{- end -}}
{{- if $v.ipam.installUplinkRoutesForDelegatedIPAM -}}
{{- $_ := set $d "install-uplink-routes-for-delegated-ipam" "true" -}}
{{- end -}}
{{- with $v.ipam.operator.externalAPILimitBurstSize -}}
{{- $_ := set $d "limit-ipam-api-burst" (toString .) -}}
{{- end -}}
{{- with $v.ipam.operator.externalAPILimitQPS -}}
{{- $_ := set $d "limit-ipam-api-qps" (toString .) -}}
{{- end -}}
{{- $eni := $v.eni -}}
{{- if $eni.enabled -}}
{{- $_ := set $d "enable-endpoint-routes" "true" -}}
{{- $_ := set $d "auto-create-cilium-node-resource" "true" -}}
{{- if $eni.awsReleaseExcessIPs -}}{{- $_ := set $d "aws-release-excess-ips" "true" -}}{{- end -}}
{{- if $eni.awsEnablePrefixDelegation -}}{{- $_ := set $d "aws-enable-prefix-delegation" "true" -}}{{- end -}}
{{- $_ := set $d "ec2-api-endpoint" (toString $eni.ec2APIEndpoint) -}}
{{- $_ := set $d "eni-tags" (toRawJson ($eni.eniTags | default dict)) -}}
{{- with $eni.subnetIDsFilter -}}{{- $_ := set $d "subnet-ids-filter" (join " " .) -}}{{- end -}}
{{- with $eni.subnetTagsFilter -}}{{- $_ := set $d "subnet-tags-filter" (join "," .) -}}{{- end -}}
{{- with $eni.instanceTagsFilter -}}{{- $_ := set $d "instance-tags-filter" (join "," .) -}}{{- end -}}
{{- end -}}
{{- with $eni.gcInterval -}}
{{- $_ := set $d "eni-gc-interval" (include "cilium.duration" (list "eni.gcInterval" .)) -}}
{{- end -}}
{{- with $eni.gcTags -}}{{- $_ := set $d "eni-gc-tags" (toRawJson .) -}}{{- end -}}

{{- /* Cluster */ -}}
{{- if not (regexMatch "^([a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?)$" (toString $v.cluster.name)) -}}
{{- fail (printf "cluster.name %q must be at most 32 lower-case alphanumerics or dashes, starting and ending alphanumeric" (toString $v.cluster.name)) -}}
{{- end -}}
{{- if and (eq (toString $v.cluster.name) "default") (ne (int $v.cluster.id) 0) -}}
{{- fail "cluster.name must not be \"default\" when cluster.id is not 0" -}}
{{- end -}}
{{- $_ := set $d "cluster-name" (toString $v.cluster.name) -}}
{{- $_ := set $d "cluster-id" (toString (int $v.cluster.id)) -}}
{{- $cm := $v.clustermesh -}}
{{- $_ := set $d "max-connected-clusters" (toString (int $cm.maxConnectedClusters)) -}}
{{- $_ := set $d "clustermesh-enable-endpoint-sync" (toString $cm.enableEndpointSliceSynchronization) -}}
{{- $_ := set $d "clustermesh-enable-mcs-api" (toString (or $cm.enableMCSAPISupport $cm.mcsapi.enabled)) -}}

{{- /* Routing, encapsulation and masquerading */ -}}
{{- $_ := set $d "routing-mode" $routing -}}
{{- $_ := set $d "tunnel-protocol" ($v.tunnelProtocol | default "vxlan") -}}
{{- $_ := set $d "tunnel-source-port-range" (toString $v.tunnelSourcePortRange) -}}
{{- with $v.tunnelPort -}}{{- $_ := set $d "tunnel-port" (toString (int .)) -}}{{- end -}}
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
{{- $_ := set $d "direct-routing-skip-unreachable" (toString $v.directRoutingSkipUnreachable) -}}
{{- $_ := set $d "enable-masquerade-to-route-source" (toString $v.enableMasqueradeRouteSource) -}}
{{- $_ := set $d "iptables-random-fully" (toString $v.iptablesRandomFully) -}}
{{- $_ := set $d "nat-map-stats-entries" (toString $v.nat.mapStatsEntries) -}}
{{- $_ := set $d "nat-map-stats-interval" (toString $v.nat.mapStatsInterval) -}}
{{- $_ := set $d "enable-vtep" (toString $v.vtep.enabled) -}}
{{- $_ := set $d "vtep-endpoint" (toString $v.vtep.endpoint) -}}
{{- $_ := set $d "vtep-cidr" (toString $v.vtep.cidr) -}}
{{- $_ := set $d "vtep-mask" (toString $v.vtep.mask) -}}
{{- $_ := set $d "vtep-mac" (toString $v.vtep.mac) -}}
{{- $_ := set $d "enable-sctp" (toString $v.sctp.enabled) -}}
{{- if $v.bandwidthManager.enabled -}}
{{- $_ := set $d "enable-bandwidth-manager" "true" -}}
{{- $_ := set $d "enable-bbr" (toString $v.bandwidthManager.bbr) -}}
{{- $_ := set $d "enable-bbr-hostns-only" (toString $v.bandwidthManager.bbrHostNamespaceOnly) -}}
{{- end -}}

{{- /* Transparent encryption */ -}}
{{- $enc := $v.encryption -}}
{{- if $enc.enabled -}}
{{- if eq $enc.type "wireguard" -}}
{{- $_ := set $d "enable-wireguard" "true" -}}
{{- $_ := set $d "wireguard-persistent-keepalive" (toString $enc.wireguard.persistentKeepalive) -}}
{{- else if eq $enc.type "ipsec" -}}
{{- $_ := set $d "enable-ipsec" "true" -}}
{{- $_ := set $d "ipsec-key-file" (printf "%s/%s" $enc.ipsec.mountPath $enc.ipsec.keyFile) -}}
{{- $_ := set $d "enable-ipsec-key-watcher" (toString $enc.ipsec.keyWatcher) -}}
{{- $_ := set $d "ipsec-key-rotation-duration" (include "cilium.duration" (list "encryption.ipsec.keyRotationDuration" $enc.ipsec.keyRotationDuration)) -}}
{{- $_ := set $d "enable-ipsec-encrypted-overlay" (toString $enc.ipsec.encryptedOverlay) -}}
{{- with $enc.ipsec.interface -}}
{{- $_ := set $d "encrypt-interface" . -}}
{{- end -}}
{{- else -}}
{{- fail (printf "encryption.type must be ipsec or wireguard, not %q" (toString $enc.type)) -}}
{{- end -}}
{{- if $enc.nodeEncryption -}}
{{- $_ := set $d "encrypt-node" "true" -}}
{{- end -}}
{{- end -}}
{{- if $enc.strictMode.enabled -}}
{{- $_ := set $d "enable-encryption-strict-mode" "true" -}}
{{- $_ := set $d "encryption-strict-mode-cidr" (toString $enc.strictMode.cidr) -}}
{{- $_ := set $d "encryption-strict-mode-allow-remote-node-identities" (toString $enc.strictMode.allowRemoteNodeIdentities) -}}
{{- end -}}
{{- if $v.MTU -}}
{{- $_ := set $d "mtu" (toString (int $v.MTU)) -}}
{{- end -}}

{{- /* Service load-balancing */ -}}
{{- $_ := set $d "kube-proxy-replacement" $kpr -}}
{{- if eq $kpr "true" -}}
{{- $_ := set $d "kube-proxy-replacement-healthz-bind-address" ($v.kubeProxyReplacementHealthzBindAddr | default "") -}}
{{- else -}}
{{- $_ := set $d "enable-node-port" (toString $v.nodePort.enabled) -}}
{{- if $v.externalIPs.enabled -}}
{{- $_ := set $d "enable-external-ips" "true" -}}
{{- end -}}
{{- end -}}
{{- $_ := set $d "nodeport-addresses" (join "," ($v.nodePort.addresses | default list)) -}}
{{- $_ := set $d "bpf-lb-sock" "false" -}}
{{- $lb := $v.loadBalancer -}}
{{- $_ := set $d "bpf-lb-acceleration" (toString $lb.acceleration) -}}
{{- with $lb.algorithm -}}{{- $_ := set $d "bpf-lb-algorithm" . -}}{{- end -}}
{{- with $lb.mode -}}{{- $_ := set $d "bpf-lb-mode" . -}}{{- end -}}
{{- with $lb.dsrDispatch -}}{{- $_ := set $d "bpf-lb-dsr-dispatch" . -}}{{- end -}}
{{- if $lb.serviceTopology -}}{{- $_ := set $d "enable-service-topology" "true" -}}{{- end -}}
{{- if $lb.standalone -}}{{- $_ := set $d "bpf-lb-only" "true" -}}{{- end -}}
{{- $_ := set $d "bpf-lb-external-clusterip" (toString $v.bpf.lbExternalClusterIP) -}}
{{- $_ := set $d "bpf-lb-source-range-all-types" (toString $v.bpf.lbSourceRangeAllTypes) -}}
{{- $_ := set $d "bpf-lb-algorithm-annotation" (toString $v.bpf.lbAlgorithmAnnotation) -}}
{{- $_ := set $d "bpf-lb-mode-annotation" (toString $v.bpf.lbModeAnnotation) -}}
{{- $_ := set $d "enable-health-check-nodeport" "true" -}}
{{- $_ := set $d "enable-health-check-loadbalancer-ip" "false" -}}
{{- $_ := set $d "node-port-bind-protection" "true" -}}
{{- $_ := set $d "enable-auto-protect-node-port-range" "true" -}}
{{- $_ := set $d "enable-svc-source-range-check" (toString $v.svcSourceRangeCheck) -}}
{{- $_ := set $d "enable-internal-traffic-policy" (toString $v.enableInternalTrafficPolicy) -}}
{{- if not (has $v.serviceNoBackendResponse (list "reject" "drop")) -}}
{{- fail (printf "serviceNoBackendResponse must be reject or drop, not %q" (toString $v.serviceNoBackendResponse)) -}}
{{- end -}}
{{- $_ := set $d "service-no-backend-response" $v.serviceNoBackendResponse -}}
{{- $_ := set $d "enable-lb-ipam" (toString $v.enableLBIPAM) -}}
{{- $_ := set $d "default-lb-service-ipam" (toString $v.defaultLBServiceIPAM) -}}
{{- if $v.egressGateway.enabled -}}
{{- $_ := set $d "enable-egress-gateway" "true" -}}
{{- with $v.egressGateway.maxPolicyEntries -}}
{{- $_ := set $d "egress-gateway-policy-map-max" (toString (int .)) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $d "egress-gateway-reconciliation-trigger-interval" (toString $v.egressGateway.reconciliationTriggerInterval) -}}

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
{{- $_ := set $d "bpf-events-drop-enabled" (toString $v.bpf.events.drop.enabled) -}}
{{- $_ := set $d "bpf-events-policy-verdict-enabled" (toString $v.bpf.events.policyVerdict.enabled) -}}
{{- $_ := set $d "bpf-events-trace-enabled" (toString $v.bpf.events.trace.enabled) -}}
{{- if $is118 -}}
{{- /* The distributed LRU backend is new in 1.18. */ -}}
{{- $_ := set $d "bpf-distributed-lru" (toString $v.bpf.distributedLRU.enabled) -}}
{{- else if $v.bpf.distributedLRU.enabled -}}
{{- fail "bpf.distributedLRU needs Cilium 1.18 or newer" -}}
{{- end -}}
{{- $_ := set $d "enable-tcx" (toString $v.bpf.enableTCX) -}}
{{- $_ := set $d "datapath-mode" (toString $v.bpf.datapathMode) -}}
{{- $_ := set $d "enable-bpf-clock-probe" (toString $v.bpfClockProbe) -}}
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
{{- if $v.cni.configMap -}}
{{- $_ := set $d "read-cni-conf" (printf "%s/%s" $v.cni.confFileMountPath $v.cni.configMapKey) -}}
{{- if $v.cni.customConf -}}
{{- /* A CNI configuration from a ConfigMap is still written with customConf (pre-1.14 usage). */ -}}
{{- $_ := set $d "write-cni-conf-when-ready" (printf "%s/05-cilium.conflist" $v.cni.hostConfDirMountPath) -}}
{{- end -}}
{{- end -}}
{{- if ne $chaining "none" -}}
{{- $_ := set $d "cni-chaining-mode" $chaining -}}
{{- if ne $chaining "portmap" -}}
{{- /* The chained plugin routes to the pods: no PodCIDR route to cilium_host. */ -}}
{{- $_ := set $d "enable-local-node-route" "false" -}}
{{- end -}}
{{- end -}}
{{- if not (kindIs "invalid" $v.cni.chainingTarget) -}}
{{- $_ := set $d "cni-chaining-target" (toString $v.cni.chainingTarget) -}}
{{- end -}}
{{- if $v.cni.enableRouteMTUForCNIChaining -}}
{{- $_ := set $d "enable-route-mtu-for-cni-chaining" "true" -}}
{{- end -}}

{{- /* Policy and proxies */ -}}
{{- $_ := set $d "enable-l7-proxy" (toString $v.l7Proxy) -}}
{{- /* 1.18 turned L2 neighbour discovery off by default; the 1.17 line keeps it on. */ -}}
{{- $l2 := $v.l2NeighDiscovery.enabled -}}
{{- if kindIs "invalid" $l2 -}}{{- $l2 = not $is118 -}}{{- end -}}
{{- $_ := set $d "enable-l2-neigh-discovery" (toString $l2) -}}
{{- if and $l2 (not $is118) -}}
{{- $_ := set $d "arping-refresh-period" (toString ($v.l2NeighDiscovery.refreshPeriod | default "30s")) -}}
{{- end -}}
{{- $_ := set $d "enable-k8s-networkpolicy" (toString $v.k8sNetworkPolicy.enabled) -}}
{{- $_ := set $d "enable-non-default-deny-policies" (toString $v.enableNonDefaultDenyPolicies) -}}
{{- $_ := set $d "enable-well-known-identities" (toString $v.wellKnownIdentities.enabled) -}}
{{- /* Endpoint health checks need Cilium's own pod routing: off when chained, except portmap. */ -}}
{{- $_ := set $d "enable-endpoint-health-checking" (toString (and $v.endpointHealthChecking.enabled (has $chaining (list "none" "portmap")))) -}}
{{- $_ := set $d "enable-health-checking" (toString $v.healthChecking) -}}
{{- $_ := set $d "health-check-icmp-failure-threshold" (toString $v.healthCheckICMPFailureThreshold) -}}
{{- $_ := set $d "enable-xt-socket-fallback" (toString $v.enableXTSocketFallback) -}}
{{- $_ := set $d "install-no-conntrack-iptables-rules" (toString (and $v.installNoConntrackIptablesRules (not $v.eni.enabled) (eq $chaining "none"))) -}}
{{- $_ := set $d "synchronize-k8s-nodes" (toString $v.synchronizeK8sNodes) -}}
{{- $_ := set $d "enable-source-ip-verification" (toString $v.daemon.enableSourceIPVerification) -}}
{{- $_ := set $d "enable-node-selector-labels" (toString $v.nodeSelectorLabels) -}}
{{- $_ := set $d "enable-endpoint-lockdown-on-policy-overflow" (toString $v.endpointLockdownOnMapOverflow) -}}
{{- $_ := set $d "policy-cidr-match-mode" (join " " ($v.policyCIDRMatchMode | default list)) -}}
{{- $_ := set $d "agent-not-ready-taint-key" (toString $v.agentNotReadyTaintKey) -}}

{{- /* FQDN policies: the DNS proxy */ -}}
{{- $dns := $v.dnsProxy -}}
{{- if not (kindIs "invalid" $dns.enableTransparentMode) -}}
{{- $_ := set $d "dnsproxy-enable-transparent-mode" (toString $dns.enableTransparentMode) -}}
{{- else if eq $chaining "none" -}}
{{- /* Transparent mode is the default only when Cilium is not chained. */ -}}
{{- $_ := set $d "dnsproxy-enable-transparent-mode" "true" -}}
{{- end -}}
{{- $_ := set $d "dnsproxy-socket-linger-timeout" (toString $dns.socketLingerTimeout) -}}
{{- $_ := set $d "tofqdns-dns-reject-response-code" (toString $dns.dnsRejectResponseCode) -}}
{{- $_ := set $d "tofqdns-enable-dns-compression" (toString $dns.enableDnsCompression) -}}
{{- $_ := set $d "tofqdns-endpoint-max-ip-per-hostname" (toString $dns.endpointMaxIpPerHostname) -}}
{{- $_ := set $d "tofqdns-idle-connection-grace-period" (toString $dns.idleConnectionGracePeriod) -}}
{{- $_ := set $d "tofqdns-max-deferred-connection-deletes" (toString $dns.maxDeferredConnectionDeletes) -}}
{{- $_ := set $d "tofqdns-preallocate-identities" (toString $dns.preAllocateIdentities) -}}
{{- $_ := set $d "tofqdns-proxy-response-max-delay" (toString $dns.proxyResponseMaxDelay) -}}
{{- with $dns.minTtl -}}{{- $_ := set $d "tofqdns-min-ttl" (toString .) -}}{{- end -}}
{{- with $dns.proxyPort -}}{{- $_ := set $d "tofqdns-proxy-port" (toString .) -}}{{- end -}}
{{- with $dns.preCache -}}{{- $_ := set $d "tofqdns-pre-cache" . -}}{{- end -}}

{{- /* L2 announcements of pod IPs */ -}}
{{- if $v.l2podAnnouncements.enabled -}}
{{- $_ := set $d "enable-l2-pod-announcements" "true" -}}
{{- $_ := set $d "l2-pod-announcements-interface" (toString $v.l2podAnnouncements.interface) -}}
{{- end -}}

{{- /* Mutual authentication */ -}}
{{- $auth := $v.authentication -}}
{{- $_ := set $d "mesh-auth-enabled" (toString $auth.enabled) -}}
{{- if $auth.enabled -}}
{{- $_ := set $d "mesh-auth-queue-size" (toString $auth.queueSize) -}}
{{- $_ := set $d "mesh-auth-rotated-identities-queue-size" (toString $auth.rotatedIdentitiesQueueSize) -}}
{{- $_ := set $d "mesh-auth-gc-interval" (toString $auth.gcInterval) -}}
{{- end -}}

{{- /* Envoy: a DaemonSet of its own (external-envoy-proxy) or inside the agent */ -}}
{{- $envoy := $v.envoy -}}
{{- $_ := set $d "external-envoy-proxy" (toString $envoyDS) -}}
{{- $_ := set $d "envoy-base-id" (toString $envoy.baseID) -}}
{{- $_ := set $d "envoy-access-log-buffer-size" (toString $envoy.log.accessLogBufferSize) -}}
{{- $_ := set $d "envoy-keep-cap-netbindservice" (toString $envoy.securityContext.capabilities.keepCapNetBindService) -}}
{{- $_ := set $d "proxy-connect-timeout" (toString $envoy.connectTimeoutSeconds) -}}
{{- $_ := set $d "proxy-initial-fetch-timeout" (toString $envoy.initialFetchTimeoutSeconds) -}}
{{- $_ := set $d "proxy-max-requests-per-connection" (toString $envoy.maxRequestsPerConnection) -}}
{{- $_ := set $d "proxy-max-connection-duration-seconds" (toString $envoy.maxConnectionDurationSeconds) -}}
{{- $_ := set $d "proxy-idle-timeout-seconds" (toString $envoy.idleTimeoutDurationSeconds) -}}
{{- $_ := set $d "proxy-max-concurrent-retries" (toString $envoy.maxConcurrentRetries) -}}
{{- $_ := set $d "http-retry-count" (toString $envoy.httpRetryCount) -}}
{{- $_ := set $d "http-stream-idle-timeout" (toString $envoy.streamIdleTimeoutDurationSeconds) -}}
{{- $_ := set $d "proxy-xff-num-trusted-hops-ingress" (toString $envoy.xffNumTrustedHopsL7PolicyIngress) -}}
{{- $_ := set $d "proxy-xff-num-trusted-hops-egress" (toString $envoy.xffNumTrustedHopsL7PolicyEgress) -}}
{{- with $envoy.policyRestoreTimeoutDuration -}}
{{- $_ := set $d "envoy-policy-restore-timeout" (toString .) -}}
{{- end -}}
{{- with $envoy.httpUpstreamLingerTimeout -}}
{{- $_ := set $d "envoy-http-upstream-linger-timeout" (toString .) -}}
{{- end -}}
{{- include "cilium.config.gateways" (list . $d) -}}
{{- if $is118 -}}
{{- $_ := set $d "policy-default-local-cluster" (toString $v.clustermesh.policyDefaultLocalCluster) -}}
{{- end -}}

{{- /* Kubernetes client */ -}}
{{- with $v.k8sClientRateLimit.qps -}}{{- $_ := set $d "k8s-client-qps" (toString .) -}}{{- end -}}
{{- with $v.kubeConfigPath -}}{{- $_ := set $d "k8s-kubeconfig-path" (toString .) -}}{{- end -}}
{{- if and $v.ipMasqAgent $v.ipMasqAgent.enabled -}}{{- $_ := set $d "enable-ip-masq-agent" "true" -}}{{- end -}}
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

{{- include "cilium.config.options" (list . $d) -}}

{{- /* extraConfig last: the user's word wins */ -}}
{{- range $key, $value := $v.extraConfig -}}
{{- $_ := set $d $key (toString $value) -}}
{{- end -}}
{{- toYaml $d -}}
{{- end -}}
