package metrics

import "github.com/prometheus/client_golang/prometheus"

var (
	descContinuousValid = prometheus.NewDesc("custos_verify_valid",
		"1 while the server's own continuous check of its chain (each new record once, plus scheduled full passes) has found no problem, 0 after the first.", nil, nil)
	descContinuousSeq = prometheus.NewDesc("custos_verify_last_seq",
		"Last seq the continuous chain check verified.", nil, nil)
)

// TrackVerify registers custos_verify_valid and custos_verify_last_seq,
// read at scrape time from status (alerting.Engine.Status). Call it once.
func (m *Metrics) TrackVerify(status func() (valid bool, lastSeq uint64)) error {
	return m.reg.Register(continuousCollector{status})
}

type continuousCollector struct {
	status func() (bool, uint64)
}

func (c continuousCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descContinuousValid
	ch <- descContinuousSeq
}

func (c continuousCollector) Collect(ch chan<- prometheus.Metric) {
	valid, seq := c.status()
	v := 0.0
	if valid {
		v = 1
	}
	ch <- prometheus.MustNewConstMetric(descContinuousValid, prometheus.GaugeValue, v)
	ch <- prometheus.MustNewConstMetric(descContinuousSeq, prometheus.GaugeValue, float64(seq))
}
