package httpapi

// CSVSafe returns row with every cell neutralised against CSV (formula)
// injection, as OWASP recommends: a cell that begins with '=', '+', '-',
// '@', tab or carriage return, which a spreadsheet would run as a formula,
// gets a single quote (') in front, so the spreadsheet shows it as text.
// Every other cell is unchanged. Every CSV the server or the CLI writes
// passes each data row through CSVSafe (docs/export-format.md, "CSV");
// JSONL is never changed. row itself is modified and returned.
func CSVSafe(row []string) []string {
	for i, cell := range row {
		if cell == "" {
			continue
		}
		switch cell[0] {
		case '=', '+', '-', '@', '\t', '\r':
			row[i] = "'" + cell
		}
	}
	return row
}
