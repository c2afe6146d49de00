#!/usr/bin/env bash
# notion-contract.sh fetches Notion's official API description, pinned, for
# the sandbox contract test (internal/notionfake/contract_test.go):
#
#   openapi.json                 the OpenAPI file of @notionhq/notion-mcp-server
#                                (paths, methods, request parameters and
#                                bodies; most responses only "type: object")
#   sdk-2022-06-28.schema.json   JSON Schema of the response types of
#   sdk-2025-09-03.schema.json   @notionhq/client 4.0.2 (the last for API
#                                2022-06-28) and 5.26.0 (2025-09-03),
#                                generated from build/src/api-endpoints.d.ts
#                                by ts-json-schema-generator
#
# into $NOTION_CONTRACT_DIR (default .cache/notion-contract, gitignored).
# Versions and integrity hashes are pinned by scripts/notion-contract/
# package-lock.json (npm ci) and MCP_SERVER_* below; a run with the same pins
# does nothing. Needs node and npm. Without them it fails when CI=true (the
# contract test must not be skipped there) and warns otherwise.
set -euo pipefail

MCP_SERVER_VERSION=2.5.2
MCP_SERVER_INTEGRITY='sha512-5nPSwHMnugSGAhSJS5vVIlMao+iTJO9HoWGpCnT8lJNrPy3rZMqs1V/CPiN4MuxF+5EBgRE/f/Tirl6Wfi75Mg=='

# Response types the fake serves, per API version. The contract test names
# them (contractCases); a type missing here fails the test, not this script.
TYPES_COMMON=(SearchResponse GetPageResponse UpdatePageResponse GetPagePropertyResponse
	GetBlockResponse ListBlockChildrenResponse GetDatabaseResponse ListUsersResponse GetUserResponse
	OauthTokenResponse OauthRevokeResponse OauthIntrospectResponse)
TYPES_2022=(QueryDatabaseResponse)
TYPES_2025=(GetDataSourceResponse QueryDataSourceResponse)

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pins="$root/scripts/notion-contract"
out=${NOTION_CONTRACT_DIR:-$root/.cache/notion-contract}

missing() {
	if [[ ${CI:-} == true ]]; then
		echo "notion-contract: $1; the contract test cannot run (CI=true)" >&2
		exit 1
	fi
	echo "notion-contract: $1; skipped, the contract test will be skipped too (install node and npm, then make deps)" >&2
	exit 0
}
command -v node >/dev/null 2>&1 || missing "node not found"
command -v npm >/dev/null 2>&1 || missing "npm not found"

stamp=$(cat "$pins/package-lock.json" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)
if [[ -f $out/STAMP && $(cat "$out/STAMP") == "$stamp" ]]; then
	exit 0
fi

echo "notion-contract: fetching the pinned Notion API description into $out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$pins/package.json" "$pins/package-lock.json" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)

# The MCP server is fetched as a tarball, not installed: only its OpenAPI file
# is needed, not its runtime dependencies.
got=$(cd "$work" && npm pack "@notionhq/notion-mcp-server@$MCP_SERVER_VERSION" --json --loglevel=error |
	node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const p=JSON.parse(s)[0];console.log(p.integrity+" "+p.filename)})')
read -r integrity tarball <<<"$got"
if [[ $integrity != "$MCP_SERVER_INTEGRITY" ]]; then
	echo "notion-contract: @notionhq/notion-mcp-server@$MCP_SERVER_VERSION integrity $integrity, want $MCP_SERVER_INTEGRITY" >&2
	exit 1
fi
mkdir -p "$work/mcp"
tar -xzf "$work/$tarball" -C "$work/mcp" package/scripts/notion-openapi.json

gen() { # version types...
	local v=$1
	shift
	(cd "$work" && node node_modules/ts-json-schema-generator/bin/ts-json-schema-generator.js \
		--path "node_modules/notion-client-$v/build/src/api-endpoints.d.ts" \
		--no-type-check --type "$@" --out "$work/sdk-$v.schema.json")
}
gen 2022-06-28 "${TYPES_COMMON[@]}" "${TYPES_2022[@]}"
gen 2025-09-03 "${TYPES_COMMON[@]}" "${TYPES_2025[@]}"

mkdir -p "$out"
cp "$work/mcp/package/scripts/notion-openapi.json" "$out/openapi.json"
cp "$work/sdk-2022-06-28.schema.json" "$work/sdk-2025-09-03.schema.json" "$out/"
{
	echo "@notionhq/notion-mcp-server $MCP_SERVER_VERSION"
	node -e 'const l=require(process.argv[1]).packages;for(const k of Object.keys(l))if(/^node_modules\/(notion-client|ts-json)/.test(k))console.log(k.slice(13)+" "+(l[k].name||"")+" "+l[k].version)' "$pins/package-lock.json"
} >"$out/VERSIONS"
echo "$stamp" >"$out/STAMP"
