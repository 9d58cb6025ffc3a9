{{/*
cilium-config keys of agent options that upstream's chart renders only when set (so the
default cilium-config stays upstream's). Arguments: (list $ <config dict>).
*/}}
{{- define "cilium.config.options" -}}
{{- $ctx := index . 0 -}}
{{- $d := index . 1 -}}
{{- $v := $ctx.Values -}}
{{- $is118 := eq (include "cilium.is118" $ctx) "true" -}}
{{- $flags := dict
  "annotate-k8s-node" $v.annotateK8sNode
  "force-device-detection" $v.forceDeviceDetection
  "clean-cilium-state" $v.cleanState
  "clean-cilium-bpf-state" $v.cleanBpfState
  "enable-nat46x64-gateway" $v.nat46x64Gateway.enabled
  "enable-pmtu-discovery" $v.pmtuDiscovery.enabled
  "enable-host-firewall" $v.hostFirewall.enabled
  "enable-custom-calls" $v.customCalls.enabled
  "enable-cilium-endpoint-slice" $v.ciliumEndpointSlice.enabled
  "bpf-conntrack-accounting" $v.bpf.ctAccounting
  "disable-external-ip-mitigation" $v.bpf.disableExternalIPMitigation
  "bpf-lb-sock-hostns-only" $v.socketLB.hostNamespaceOnly
  "bpf-lb-sock-terminate-pod-connections" $v.socketLB.terminatePodConnections
  "log-system-load" $v.logSystemLoad
  "disable-endpoint-crd" $v.disableEndpointCRD
  "enable-node-ipam" $v.nodeIPAM.enabled
  "enable-local-redirect-policy" (or $v.localRedirectPolicy $v.localRedirectPolicies.enabled)
-}}
{{- range $key, $on := $flags -}}
{{- if $on -}}{{- $_ := set $d $key "true" -}}{{- end -}}
{{- end -}}
{{- if $v.endpointRoutes.enabled -}}
{{- $_ := set $d "enable-endpoint-routes" "true" -}}
{{- end -}}
{{- if not (kindIs "invalid" $v.socketLB.enabled) -}}
{{- $_ := set $d "bpf-lb-sock" (toString $v.socketLB.enabled) -}}
{{- end -}}
{{- if not (kindIs "invalid" $v.bpf.hostLegacyRouting) -}}
{{- $_ := set $d "enable-host-legacy-routing" (toString $v.bpf.hostLegacyRouting) -}}
{{- else if ne (include "cilium.cni.chainingMode" $ctx) "none" -}}
{{- /* Chained: the other plugin owns connectivity, so BPF host routing falls back. */ -}}
{{- $_ := set $d "enable-host-legacy-routing" "true" -}}
{{- end -}}
{{- if not (kindIs "invalid" $v.bpf.tproxy) -}}
{{- $_ := set $d "enable-bpf-tproxy" (toString $v.bpf.tproxy) -}}
{{- end -}}
{{- with $v.bpf.vlanBypass -}}
{{- $_ := set $d "vlan-bpf-bypass" (join " " .) -}}
{{- end -}}
{{- with $v.connectivityProbeFrequencyRatio -}}
{{- $_ := set $d "connectivity-probe-frequency-ratio" (toString .) -}}
{{- end -}}
{{- with $v.conntrackGCInterval -}}
{{- $_ := set $d "conntrack-gc-interval" (include "cilium.duration" (list "conntrackGCInterval" .)) -}}
{{- end -}}
{{- with $v.conntrackGCMaxInterval -}}
{{- $_ := set $d "conntrack-gc-max-interval" (include "cilium.duration" (list "conntrackGCMaxInterval" .)) -}}
{{- end -}}
{{- with $v.crdWaitTimeout -}}
{{- $_ := set $d "crd-wait-timeout" (include "cilium.duration" (list "crdWaitTimeout" .)) -}}
{{- end -}}
{{- with $v.k8s.apiServerURLs -}}
{{- if not $is118 -}}
{{- fail "k8s.apiServerURLs needs Cilium 1.18 or newer" -}}
{{- end -}}
{{- $_ := set $d "k8s-api-server-urls" . -}}
{{- end -}}
{{- with $v.ipv6NativeRoutingCIDR -}}{{- $_ := set $d "ipv6-native-routing-cidr" . -}}{{- end -}}
{{- with $v.identityChangeGracePeriod -}}
{{- $_ := set $d "identity-change-grace-period" (include "cilium.duration" (list "identityChangeGracePeriod" .)) -}}
{{- end -}}
{{- with $v.apiRateLimit -}}{{- $_ := set $d "api-rate-limit" (toString .) -}}{{- end -}}
{{- with $v.maglev.tableSize -}}{{- $_ := set $d "bpf-lb-maglev-table-size" (toString (int .)) -}}{{- end -}}
{{- with $v.maglev.hashSeed -}}{{- $_ := set $d "bpf-lb-maglev-hash-seed" (toString .) -}}{{- end -}}
{{- if $v.pprof.enabled -}}
{{- $_ := set $d "pprof" "true" -}}
{{- $_ := set $d "pprof-address" (toString $v.pprof.address) -}}
{{- $_ := set $d "pprof-port" (toString (int $v.pprof.port)) -}}
{{- end -}}
{{- if $v.operator.pprof.enabled -}}
{{- $_ := set $d "operator-pprof" "true" -}}
{{- $_ := set $d "operator-pprof-address" (toString $v.operator.pprof.address) -}}
{{- $_ := set $d "operator-pprof-port" (toString (int $v.operator.pprof.port)) -}}
{{- end -}}
{{- $h := $v.hubble -}}
{{- if $h.enabled -}}
{{- if $h.preferIpv6 -}}{{- $_ := set $d "hubble-prefer-ipv6" "true" -}}{{- end -}}
{{- if not (kindIs "invalid" $h.skipUnknownCGroupIDs) -}}
{{- $_ := set $d "hubble-skip-unknown-cgroup-ids" (toString $h.skipUnknownCGroupIDs) -}}
{{- end -}}
{{- if $h.dropEventEmitter.enabled -}}
{{- $_ := set $d "hubble-drop-events" "true" -}}
{{- $_ := set $d "hubble-drop-events-interval" (include "cilium.duration" (list "hubble.dropEventEmitter.interval" $h.dropEventEmitter.interval)) -}}
{{- $_ := set $d "hubble-drop-events-reasons" (join " " $h.dropEventEmitter.reasons) -}}
{{- end -}}
{{- if $h.redact.enabled -}}
{{- $_ := set $d "hubble-redact-enabled" "true" -}}
{{- $_ := set $d "hubble-redact-http-urlquery" (toString $h.redact.http.urlQuery) -}}
{{- $_ := set $d "hubble-redact-http-userinfo" (toString $h.redact.http.userInfo) -}}
{{- $_ := set $d "hubble-redact-kafka-apikey" (toString $h.redact.kafka.apiKey) -}}
{{- with $h.redact.http.headers.allow -}}{{- $_ := set $d "hubble-redact-http-headers-allow" (join "," .) -}}{{- end -}}
{{- with $h.redact.http.headers.deny -}}{{- $_ := set $d "hubble-redact-http-headers-deny" (join "," .) -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- $bgp := $v.bgpControlPlane -}}
{{- if $bgp.enabled -}}
{{- $_ := set $d "enable-bgp-control-plane" "true" -}}
{{- $_ := set $d "bgp-secrets-namespace" $bgp.secretsNamespace.name -}}
{{- $_ := set $d "enable-bgp-control-plane-status-report" (toString $bgp.statusReport.enabled) -}}
{{- $_ := set $d "bgp-router-id-allocation-mode" (toString $bgp.routerIDAllocation.mode) -}}
{{- $_ := set $d "bgp-router-id-allocation-ip-pool" (toString $bgp.routerIDAllocation.ipPool) -}}
{{- $_ := set $d "enable-bgp-legacy-origin-attribute" (toString $bgp.legacyOriginAttribute.enabled) -}}
{{- end -}}
{{- $l2 := $v.l2announcements -}}
{{- if $l2.enabled -}}
{{- $_ := set $d "enable-l2-announcements" "true" -}}
{{- $_ := set $d "l2-announcements-lease-duration" (include "cilium.duration" (list "l2announcements.leaseDuration" $l2.leaseDuration)) -}}
{{- $_ := set $d "l2-announcements-renew-deadline" (include "cilium.duration" (list "l2announcements.leaseRenewDeadline" $l2.leaseRenewDeadline)) -}}
{{- $_ := set $d "l2-announcements-retry-period" (include "cilium.duration" (list "l2announcements.leaseRetryPeriod" $l2.leaseRetryPeriod)) -}}
{{- end -}}
{{- end -}}
