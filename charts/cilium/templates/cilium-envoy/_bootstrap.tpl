{{/*
Envoy's bootstrap configuration: listeners and clusters come from the agent over xDS (a
unix socket shared through the host), plus the static health and metrics listeners and
the admin API on a unix socket. Rendered as JSON.
*/}}
{{- define "cilium.envoy.bootstrap" -}}
{{- $v := .Values -}}
{{- $sockets := "/var/run/cilium/envoy/sockets" -}}
{{- $ipv4 := $v.ipv4.enabled -}}
{{- $any := $ipv4 | ternary "0.0.0.0" "::" -}}
{{- $local := $ipv4 | ternary "127.0.0.1" "::1" -}}
{{- $xdsTimeout := printf "%ds" (int $v.envoy.connectTimeoutSeconds) -}}
{{- $grpc := dict "typed_extension_protocol_options" (dict "envoy.extensions.upstreams.http.v3.HttpProtocolOptions" (dict "@type" "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions" "explicit_http_config" (dict "http2_protocol_options" dict))) -}}
{{- $xds := merge (dict "name" "xds-grpc-cilium" "connect_timeout" $xdsTimeout "type" "STATIC" "load_assignment" (dict "cluster_name" "xds-grpc-cilium" "endpoints" (list (dict "lb_endpoints" (list (dict "endpoint" (dict "address" (dict "pipe" (dict "path" (printf "%s/xds.sock" $sockets))))))))) ) (deepCopy $grpc) -}}
{{- $admin := dict "name" "/envoy-admin" "connect_timeout" $xdsTimeout "type" "STATIC" "load_assignment" (dict "cluster_name" "/envoy-admin" "endpoints" (list (dict "lb_endpoints" (list (dict "endpoint" (dict "address" (dict "pipe" (dict "path" (printf "%s/admin.sock" $sockets))))))))) -}}
{{- $route := dict "match" (dict "prefix" "/metrics") "route" (dict "cluster" "/envoy-admin" "prefix_rewrite" "/stats/prometheus") -}}
{{- $health := dict "match" (dict "prefix" "/healthz") "direct_response" (dict "status" 200 "body" (dict "inline_string" "ok")) -}}
{{- $hcm := dict "@type" "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager" "stat_prefix" "" "http_filters" (list (dict "name" "envoy.filters.http.router" "typed_config" (dict "@type" "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"))) "stream_idle_timeout" "0s" -}}
{{- $listeners := list -}}
{{- if $v.envoy.prometheus.enabled -}}
{{- $metrics := merge (dict "route_config" (dict "virtual_hosts" (list (dict "name" "prometheus_metrics_route" "domains" (list "*") "routes" (list $route))))) (deepCopy $hcm) -}}
{{- $_ := set $metrics "stat_prefix" "envoy-prometheus-metrics-listener" -}}
{{- $listeners = append $listeners (dict "name" "envoy-prometheus-metrics-listener" "address" (dict "socket_address" (dict "address" $any "port_value" (int $v.envoy.prometheus.port))) "filter_chains" (list (dict "filters" (list (dict "name" "envoy.filters.network.http_connection_manager" "typed_config" $metrics))))) -}}
{{- end -}}
{{- $hc := merge (dict "route_config" (dict "virtual_hosts" (list (dict "name" "health" "domains" (list "*") "routes" (list $health))))) (deepCopy $hcm) -}}
{{- $_ := set $hc "stat_prefix" "envoy-health-listener" -}}
{{- $listeners = append $listeners (dict "name" "envoy-health-listener" "address" (dict "socket_address" (dict "address" $local "port_value" (int $v.envoy.healthPort))) "filter_chains" (list (dict "filters" (list (dict "name" "envoy.filters.network.http_connection_manager" "typed_config" $hc))))) -}}
{{- $ads := dict "api_type" "GRPC" "transport_api_version" "V3" "grpc_services" (list (dict "envoy_grpc" (dict "cluster_name" "xds-grpc-cilium"))) "set_node_on_first_message_only" true -}}
{{- $source := dict "ads" dict "resource_api_version" "V3" "initial_fetch_timeout" (printf "%ds" (int $v.envoy.initialFetchTimeoutSeconds)) -}}
{{- $boot := dict
  "node" (dict "id" "host~127.0.0.1~no-id~localdomain" "cluster" "ingress-cluster")
  "static_resources" (dict "listeners" $listeners "clusters" (list $xds $admin))
  "dynamic_resources" (dict "lds_config" $source "cds_config" (deepCopy $source) "ads_config" $ads)
  "admin" (dict "address" (dict "pipe" (dict "path" (printf "%s/admin.sock" $sockets))))
  "overload_manager" (dict "resource_monitors" (list (dict "name" "envoy.resource_monitors.global_downstream_max_connections" "typed_config" (dict "@type" "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig" "max_active_downstream_connections" 50000))))
-}}
{{- toJson $boot -}}
{{- end -}}
