package verify

// Segmented makes Store check a chain in segments of at least size
// records, at most most of them at once, however short the chain: the
// tests' way to reach the segmented check with small chains. Tests only.
func Segmented(size uint64, most int) Option {
	return func(o *options) { o.segmentRecords, o.segmentsAtMost = size, most }
}
