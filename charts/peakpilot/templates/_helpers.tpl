{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "peakpilot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-qualified unless the release name already contains the chart name. */}}
{{- define "peakpilot.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "peakpilot.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "peakpilot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "peakpilot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "peakpilot.labels" -}}
helm.sh/chart: {{ include "peakpilot.chart" . }}
{{ include "peakpilot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: peakpilot
{{- end }}

{{- define "peakpilot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "peakpilot.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "peakpilot.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* "true" when the operator runs with Kopf peering: forced on, or more than one replica. */}}
{{- define "peakpilot.peering" -}}
{{- if or .Values.peering.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{- define "peakpilot.peeringName" -}}
{{- default (include "peakpilot.fullname" .) .Values.peering.name }}
{{- end }}

{{/* "true" in namespaced mode; fails early when no namespace is listed. */}}
{{- define "peakpilot.namespaced" -}}
{{- if eq .Values.watch.mode "namespaced" }}
{{- if not .Values.watch.namespaces }}
{{- fail "watch.mode=namespaced needs at least one namespace in watch.namespaces" }}
{{- end }}true
{{- end }}
{{- end }}

{{/* The operator's command line after the image's ENTRYPOINT (peakpilot), one arg per line. */}}
{{- define "peakpilot.args" -}}
- operator
{{- if include "peakpilot.namespaced" . }}
{{- range .Values.watch.namespaces }}
- --namespace
- {{ . | quote }}
{{- end }}
{{- else }}
- --all-namespaces
{{- end }}
{{- if include "peakpilot.peering" . }}
- --peering
- {{ include "peakpilot.peeringName" . | quote }}
{{- else }}
- --standalone
{{- end }}
{{- range .Values.operator.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/*
Rules the operator needs on policies, targets and events, wherever it watches: the same list goes
into the ClusterRole (cluster mode) or into a Role per watched namespace (namespaced mode).
Exactly the rows of operator/peakpilot/apicalls.py (API_CALLS); tests/chart/test_chart_rbac.py
checks the rendered rules against that table.
*/}}
{{- define "peakpilot.workloadRules" -}}
# Kopf watches ScalingPolicies; patch on the object itself is only for Kopf's bookkeeping (its
# finalizer for the reconcile loop, and its progress annotations).
- apiGroups: ["peakpilot.io"]
  resources: ["scalingpolicies"]
  verbs: ["list", "watch", "patch"]
# Each reconcile's plan and conditions.
- apiGroups: ["peakpilot.io"]
  resources: ["scalingpolicies/status"]
  verbs: ["patch"]
# Explain decisions as Kubernetes Events (Kopf posts core Events).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
# Targets: the operator reads each target (annotations, readyReplicas) before its /scale, and
# changes replicas only through /scale; a policy of more than 10 targets of one of these kinds
# reads them with one list of the namespace instead of a get each.
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets", "replicasets"]
  verbs: ["get", "list"]
- apiGroups: ["apps"]
  resources: ["deployments/scale", "statefulsets/scale", "replicasets/scale"]
  verbs: ["get", "patch"]
{{- range .Values.rbac.extraScaleTargets }}
- apiGroups: [{{ .apiGroup | quote }}]
  resources: [{{ .resource | quote }}]
  verbs: ["get"]
- apiGroups: [{{ .apiGroup | quote }}]
  resources: [{{ printf "%s/scale" .resource | quote }}]
  verbs: ["get", "patch"]
{{- end }}
# Ownership check: never fight an HPA or a KEDA ScaledObject over the same target.
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["list"]
- apiGroups: ["keda.sh"]
  resources: ["scaledobjects"]
  verbs: ["list"]
{{- end }}
