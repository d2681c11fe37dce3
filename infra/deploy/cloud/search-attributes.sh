#!/usr/bin/env bash
# Registers the project's search attributes (data-schemas/workflows.ts SEARCH_ATTRIBUTES, with
# their types) on a Temporal Cloud namespace with tcld, the Cloud CLI (`tcld login` first):
#   infra/deploy/cloud/search-attributes.sh vla.a1b2c
# A self-hosted server gets them from the Helm values (../helm/temporal-values.yaml) or with
#   temporal operator search-attribute create --namespace vla --name VlaDataset --type Keyword ...
set -euo pipefail
namespace="${1:?usage: $0 <namespace>.<account id>}"
tcld namespace search-attributes add --namespace "$namespace" \
  --search-attribute "VlaDataset=Keyword" \
  --search-attribute "VlaStage=Keyword" \
  --search-attribute "VlaModel=Keyword" \
  --search-attribute "VlaRetentionGate=Keyword" \
  --search-attribute "VlaWaitingOn=Keyword" \
  --search-attribute "VlaExperiment=Keyword" \
  --search-attribute "VlaVariants=KeywordList" \
  --search-attribute "VlaState=Keyword"
