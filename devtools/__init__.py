"""What only develops holdfast, and never ships in its image: the local stack
(`make up`, `make test`'s engines), embedded Postgres and Redis, the demo
tenant's data, and the fake Stripe. It imports the shipped code (`holdfast`,
`services`, `gateway`), never the other way round."""
