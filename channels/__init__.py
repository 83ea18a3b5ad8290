"""Channel pullers: orders in from sales channels (Shopify, a generic REST endpoint, files in a folder).

A puller is a process of its own (`omsnode channel run`) that speaks to a node
only through its public HTTP API (`omsclient`), so a slow or failing channel
never slows consensus. Per channel it fetches a page of orders after its
cursor (`adapters`), maps and cleans each order into a ledger order
(`cleaning`), sends it, or the update it carries, to the node (`sending`), and
then saves the page's outcome and the new cursor in one SQLite transaction
(`state`): the cursor moves only past orders whose txs are committed or
dead-lettered, and the ledger answers a re-sent external reference with the
order it placed before, so a crash anywhere loses and doubles nothing.
"""
