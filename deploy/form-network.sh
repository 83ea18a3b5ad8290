#!/bin/sh
# Forms the compose file's network of four organisations in /net, once: each organisation's `omsnode init`,
# one `genesis create`, each `init --genesis`. On machines of their own the organisations run the same commands,
# each its own, and exchange only identity.json files, public keys and the genesis (README: "Run a network of
# organisations").
set -eu
ORGS="retail warehouse stores partner"
if [ -f /net/genesis.json ]; then
    echo "network already formed: $(omsnode genesis inspect /net/genesis.json --json | grep genesis_hash)"
    exit 0
fi
identities=""
for org in $ORGS; do
    omsnode init --home "/net/$org" --org "$org" --name "$org-node" --advertise "$org:26600" --listen 0.0.0.0:26600
    identities="$identities --identity /net/$org/identity.json"
done
omsnode client-key create --out /net/keys/ops.key
# shellcheck disable=SC2086 # one word per identity flag and file
omsnode genesis create --chain-id oms-compose $identities --client retail:ops:operator:/net/keys/ops.pub \
    --out /net/genesis.json.new
mv /net/genesis.json.new /net/genesis.json
for org in $ORGS; do
    omsnode init --home "/net/$org" --genesis /net/genesis.json
done
omsnode genesis inspect /net/genesis.json
