#!/usr/bin/env bash
# `make kind-configs`: copies the Prometheus and Grafana files the Kind manifests carry into
# k8s/generated/, so that k8s/ is a self-contained kustomization and `kubectl apply -k k8s`
# works as typed (kustomize refuses files outside the kustomization's directory). The
# copies are byte for byte those of prometheus/ and grafana/, which `make run` reads:
#
#   scripts/sync-kind-configs.sh          bring the copies up to date (make setup does this)
#   scripts/sync-kind-configs.sh --check  list the copies that differ and exit 1 if any
#                                         (make kind-lint)
#
# Edit prometheus/ and grafana/, never k8s/generated/.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="k8s/generated"
check=0
[[ "${1:-}" == --check ]] && check=1

cd "$repo"
# What the Kind lab carries (k8s/kustomization.yaml lists each file).
sources=()
for f in prometheus/prometheus-kind.yml prometheus/rules/*.yml \
    grafana/provisioning-kind/*/*.yaml grafana/dashboards/*.json; do
    [[ -f "$f" ]] || {
        echo "error: no $f" >&2
        exit 1
    }
    sources+=("$f")
done

stale=0
for f in "${sources[@]}"; do
    if ! cmp -s "$f" "$out/$f"; then
        stale=1
        if ((check)); then
            echo "$out/$f differs from $f: run make kind-configs" >&2
        else
            mkdir -p "$(dirname "$out/$f")"
            cp "$f" "$out/$f"
            echo "updated $out/$f" >&2
        fi
    fi
done
# Copies whose source is gone.
while IFS= read -r copy; do
    f="${copy#"$out"/}"
    case " ${sources[*]} " in
        *" $f "*) ;;
        *)
            stale=1
            if ((check)); then
                echo "$copy has no source $f any more: run make kind-configs" >&2
            else
                rm -f "$copy"
                echo "removed $copy" >&2
            fi
            ;;
    esac
done < <(find "$out" -type f 2>/dev/null | sort)

if ((check && stale)); then
    exit 1
fi
