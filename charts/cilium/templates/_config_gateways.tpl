{{/*
cilium-config keys of Envoy-backed north-south features: CiliumEnvoyConfig, Gateway API
and the ingress controller. Arguments: (list $ <config dict>); the keys are set in place.
*/}}
{{- define "cilium.config.gateways" -}}
{{- $ctx := index . 0 -}}
{{- $d := index . 1 -}}
{{- $v := $ctx.Values -}}
{{- $gw := $v.gatewayAPI -}}
{{- $ing := $v.ingressController -}}
{{- $l7 := $v.loadBalancer.l7 -}}
{{- if not (has $l7.backend (list "disabled" "envoy")) -}}
{{- fail (printf "loadBalancer.l7.backend must be disabled or envoy, not %q" (toString $l7.backend)) -}}
{{- end -}}
{{- $l7lb := eq $l7.backend "envoy" -}}
{{- if or $v.envoyConfig.enabled $gw.enabled $ing.enabled $l7lb -}}
{{- if not $v.l7Proxy -}}
{{- fail "envoyConfig, gatewayAPI, ingressController and loadBalancer.l7 need l7Proxy=true" -}}
{{- end -}}
{{- $_ := set $d "enable-envoy-config" "true" -}}
{{- $_ := set $d "envoy-config-retry-interval" (toString $v.envoyConfig.retryInterval) -}}
{{- if $v.envoyConfig.enabled -}}
{{- $_ := set $d "envoy-secrets-namespace" $v.envoyConfig.secretsNamespace.name -}}
{{- end -}}
{{- end -}}
{{- if or $gw.enabled $ing.enabled -}}
{{- if ne (include "cilium.kubeProxyReplacement" $ctx) "true" -}}
{{- if not $v.nodePort.enabled -}}
{{- fail "gatewayAPI and ingressController need kubeProxyReplacement=true or nodePort.enabled=true" -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $gw.enabled -}}
{{- $_ := set $d "enable-gateway-api" "true" -}}
{{- $_ := set $d "enable-gateway-api-secrets-sync" (toString (and $gw.secretsNamespace.sync true)) -}}
{{- $_ := set $d "enable-gateway-api-proxy-protocol" (toString $gw.enableProxyProtocol) -}}
{{- $_ := set $d "enable-gateway-api-app-protocol" (toString (or $gw.enableAppProtocol $gw.enableAlpn)) -}}
{{- $_ := set $d "enable-gateway-api-alpn" (toString $gw.enableAlpn) -}}
{{- $_ := set $d "gateway-api-xff-num-trusted-hops" (toString $gw.xffNumTrustedHops) -}}
{{- $_ := set $d "gateway-api-service-externaltrafficpolicy" (toString $gw.externalTrafficPolicy) -}}
{{- $_ := set $d "gateway-api-secrets-namespace" $gw.secretsNamespace.name -}}
{{- $_ := set $d "gateway-api-hostnetwork-enabled" (toString $gw.hostNetwork.enabled) -}}
{{- $_ := set $d "gateway-api-hostnetwork-nodelabelselector" (include "cilium.labelSelectorString" $gw.hostNetwork.nodes.matchLabels) -}}
{{- end -}}
{{- if $ing.enabled -}}
{{- $_ := set $d "enable-ingress-controller" "true" -}}
{{- $_ := set $d "enforce-ingress-https" (toString $ing.enforceHttps) -}}
{{- $_ := set $d "enable-ingress-proxy-protocol" (toString $ing.enableProxyProtocol) -}}
{{- $_ := set $d "enable-ingress-secrets-sync" (toString (and $ing.secretsNamespace.sync true)) -}}
{{- $_ := set $d "ingress-secrets-namespace" $ing.secretsNamespace.name -}}
{{- $_ := set $d "ingress-lb-annotation-prefixes" (join " " $ing.ingressLBAnnotationPrefixes) -}}
{{- $_ := set $d "ingress-default-lb-mode" $ing.loadbalancerMode -}}
{{- $_ := set $d "ingress-shared-lb-service-name" $ing.service.name -}}
{{- with $ing.defaultRequestTimeout -}}
{{- $_ := set $d "ingress-default-request-timeout" (include "cilium.duration" (list "ingressController.defaultRequestTimeout" .)) -}}
{{- end -}}
{{- $_ := set $d "ingress-hostnetwork-enabled" (toString $ing.hostNetwork.enabled) -}}
{{- $_ := set $d "ingress-hostnetwork-shared-listener-port" (toString $ing.hostNetwork.sharedListenerPort) -}}
{{- $_ := set $d "ingress-hostnetwork-nodelabelselector" (include "cilium.labelSelectorString" $ing.hostNetwork.nodes.matchLabels) -}}
{{- with $ing.defaultSecretNamespace -}}{{- $_ := set $d "ingress-default-secret-namespace" . -}}{{- end -}}
{{- with $ing.defaultSecretName -}}{{- $_ := set $d "ingress-default-secret-name" . -}}{{- end -}}
{{- end -}}
{{- if $l7lb -}}
{{- $_ := set $d "loadbalancer-l7" "envoy" -}}
{{- $_ := set $d "loadbalancer-l7-ports" (join " " ($l7.ports | default list)) -}}
{{- $_ := set $d "loadbalancer-l7-algorithm" $l7.algorithm -}}
{{- end -}}
{{- end -}}

{{/* A label map as "k1=v1,k2=v2" (sorted), the form the agent's selector flags take. */}}
{{- define "cilium.labelSelectorString" -}}
{{- $out := list -}}
{{- range $k, $val := (. | default dict) -}}
{{- $out = append $out (printf "%s=%s" $k $val) -}}
{{- end -}}
{{- join "," $out -}}
{{- end -}}
