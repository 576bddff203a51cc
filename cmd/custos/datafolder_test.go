package main_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInitAndServeRefuseAForeignFolder gives init and serve a folder with
// files that are no store: each refuses with one line and touches nothing.
func TestInitAndServeRefuseAForeignFolder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		code int // serve: a store that cannot be opened at start is 1
	}{
		{[]string{"init"}, 2},
		{[]string{"serve", "--addr", "127.0.0.1:0"}, 1},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644))
			r := runCLI(t, nil, append(tc.args, "--data", dir)...)
			assert.Equal(t, tc.code, r.code)
			assert.Equal(t, "custos: "+dir+" is not empty and holds no custos store (it has notes.txt): give a new or empty folder, or the folder of a store\n", r.stderr)
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Len(t, entries, 1, "nothing created")
		})
	}
}

// TestInitCreatesAPrivateStore checks the modes init gives a new data
// folder, and that a folder with only lost+found (a file system's root)
// counts as empty.
func TestInitCreatesAPrivateStore(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(dir string) error
	}{
		{"new folder", func(string) error { return nil }},
		{"mount point", func(dir string) error { return os.MkdirAll(filepath.Join(dir, "lost+found"), 0o700) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "data")
			require.NoError(t, tc.setup(dir))
			r := runCLI(t, nil, "init", "--data", dir)
			require.Equal(t, 0, r.code, r.stderr)
			require.NoError(t, os.RemoveAll(filepath.Join(dir, "lost+found")))
			assertPrivate(t, dir)
			assert.True(t, keyPattern.MatchString(strings.TrimSpace(r.stdout)))
		})
	}
}

// assertPrivate requires every folder under dir to be 0700 and every file
// 0600, whatever the umask of the test process.
func assertPrivate(t *testing.T, dir string) {
	t.Helper()
	n := 0
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		info, err := d.Info()
		require.NoError(t, err)
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700 | fs.ModeDir
		}
		assert.Equal(t, want, info.Mode(), "%s", path)
		n++
		return nil
	}))
	require.Greater(t, n, 3, "the folder holds a store")
}
