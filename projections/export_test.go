package projections

// WithoutRefill returns o with the background refill of restored
// declarative states turned off, so that a test reads them as a restarted
// server does before the refill reaches them.
func WithoutRefill(o Options) Options {
	o.noRefill = true
	return o
}
