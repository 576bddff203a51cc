package writeside

// WaitSnapshot waits until no snapshot is being saved.
func (l *Ledger) WaitSnapshot() {
	if l.snap != nil {
		l.snap.wg.Wait()
	}
}
