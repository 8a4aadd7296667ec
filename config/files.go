package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// maxPEMSize bounds what is read of a certificate, key or CA file: a
// bundle of a few hundred certificates. A path such as /dev/zero must not
// hang a check.
const maxPEMSize = 1 << 20

// validateFiles reads every file the configuration names and checks it
// holds what its key says, so that `aero2 check` finds a missing or wrong
// file at its line, not the server when it first needs it (the listener's
// certificate only once it starts serving). Relative paths are relative
// to the working directory, as the server reads them.
func (c *Config) validateFiles(ps *problems) {
	t := c.Server.TLS
	if t.CertFile != "" && t.KeyFile != "" {
		checkKeyPair(ps, "server.tls.", t.CertFile, t.KeyFile)
	}
	r := c.Store.Redis.TLS
	if c.Store.Type == "redis" {
		if r.CAFile != "" {
			checkCAFile(ps, "store.redis.tls.ca_file", r.CAFile)
		}
		if r.CertFile != "" && r.KeyFile != "" {
			checkKeyPair(ps, "store.redis.tls.", r.CertFile, r.KeyFile)
		}
	}
	apps, prefix := c.Applications, "applications[%d]."
	if len(apps) == 0 {
		apps, prefix = []Application{c.Application}, ""
	}
	for i, a := range apps {
		p := prefix
		if p != "" {
			p = fmt.Sprintf(prefix, i)
		}
		for j, rt := range a.ProxyRoutes() {
			if rt.TLS.CAFile != "" {
				checkCAFile(ps, a.RoutePath(p, j)+".tls.ca_file", rt.TLS.CAFile)
			}
		}
	}
}

// checkKeyPair checks that cert and key are PEM files that make a pair.
func checkKeyPair(ps *problems, prefix, cert, key string) {
	certPEM, cerr := readPEMFile(cert)
	if cerr != nil {
		ps.at(prefix+"cert_file", "%v", cerr)
	}
	keyPEM, kerr := readPEMFile(key)
	if kerr != nil {
		ps.at(prefix+"key_file", "%v", kerr)
	}
	if cerr != nil || kerr != nil {
		return
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		// crypto/tls says which half is wrong ("failed to find any PEM
		// data in key input", "private key does not match public key");
		// it never quotes the key.
		ps.at(prefix+"cert_file", "%s and %s are not a certificate and its key: %v", cert, key, err)
	}
}

// checkCAFile checks that path is a PEM bundle with at least one
// certificate.
func checkCAFile(ps *problems, at, path string) {
	data, err := readPEMFile(path)
	if err != nil {
		ps.at(at, "%v", err)
		return
	}
	if !x509.NewCertPool().AppendCertsFromPEM(data) {
		ps.at(at, "no PEM certificate in %s", path)
	}
}

func readPEMFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fileError(path, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, fmt.Errorf("cannot read %s: it is a directory", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPEMSize+1))
	if err != nil {
		return nil, fileError(path, err)
	}
	if len(data) > maxPEMSize {
		return nil, fmt.Errorf("cannot read %s: larger than %d bytes", path, maxPEMSize)
	}
	return data, nil
}

// fileError names the file and the reason, without Go's "open" prefix.
func fileError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("cannot read %s: %v", path, err)
}
