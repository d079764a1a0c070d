package projections

// WithoutRefill returns o with the background refill of restored
// declarative states turned off, so that a test reads them as a restarted
// server does before the refill reaches them.
func WithoutRefill(o Options) Options {
	o.noRefill = true
	return o
}

// SnapshotName is the projection name of a definition's snapshot marker;
// its kept states are SnapshotName(d)+"@N".
func SnapshotName(d Definition) string {
	n, err := d.normalize()
	if err != nil {
		panic(err)
	}
	return "declared:" + n.Name + ":" + definitionDigest(n)
}
