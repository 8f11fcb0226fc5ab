package main

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ordo-dev/ordo/cmd/ordo/serve"
)

// adminTokenEnv holds the admin token for tools that call a running
// service's /v1/admin/* endpoints, instead of the token file.
const adminTokenEnv = "ORDO_ADMIN_TOKEN"

// adminTokenFlag is --admin-token-file: where the admin token is read
// from when ORDO_ADMIN_TOKEN is not set.
type adminTokenFlag struct{ file *string }

func registerAdminToken(fs *flag.FlagSet) adminTokenFlag {
	return adminTokenFlag{file: fs.String("admin-token-file", "",
		"the running service's admin token, for its /v1/admin endpoints (default: $"+adminTokenEnv+", else <data>/secrets/"+serve.AdminTokenFile+")")}
}

// token reads the admin token: the flag's file, else the environment,
// else the file the service generated in dataDir.
func (f adminTokenFlag) token(dataDir string, getenv func(string) string) (string, error) {
	if *f.file == "" {
		if t := strings.TrimSpace(getenv(adminTokenEnv)); t != "" {
			return t, nil
		}
	}
	path := *f.file
	if path == "" {
		path = filepath.Join(serve.SecretsDir(dataDir), serve.AdminTokenFile)
	}
	t, err := serve.ReadAdminToken(path)
	if err != nil {
		return "", fmt.Errorf("%w; the running service's admin endpoints need it: give --admin-token-file or $%s (ordo serve --secrets DIR keeps it in DIR/%s)",
			err, adminTokenEnv, serve.AdminTokenFile)
	}
	return string(t), nil
}
