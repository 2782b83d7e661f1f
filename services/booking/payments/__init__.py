"""The payment side of holds: Stripe Checkout for a hold (`service`), the
refunds holdfast makes (`refunds`), the payment attempts (`attempts`),
Stripe's answers in the error model (`stripe_calls`), and the two jobs that
settle what a request could not: the payment actions carried out after a
commit (`actions`) and the reconciler (`reconciler`)."""
