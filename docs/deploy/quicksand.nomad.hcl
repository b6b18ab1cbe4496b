# quicksand serve on every client node of a Nomad cluster (docs/deploy.md):
# a system job, one server per node, with /dev/kvm and the node's data
# folder. Keys and TLS come from Nomad variables (nomad var put
# nomad/jobs/quicksand keys=@keys tls_crt=@tls.crt tls_key=@tls.key).
job "quicksand" {
  type = "system"

  group "serve" {
    network {
      port "api" {
        static = 7443
      }
    }

    task "quicksand" {
      driver = "raw_exec"

      config {
        command = "/usr/local/bin/quicksand"
        args = [
          "serve",
          "--listen=0.0.0.0:7443",
          "--tls-cert=${NOMAD_SECRETS_DIR}/tls.crt",
          "--tls-key=${NOMAD_SECRETS_DIR}/tls.key",
          "--keys=${NOMAD_SECRETS_DIR}/keys",
          "--data=/var/lib/quicksand",
          "--pool=image=debian,size=4",
          "--stop-timeout=120s",
        ]
      }

      template {
        destination = "${NOMAD_SECRETS_DIR}/keys"
        perms       = "0600"
        data        = "{{ with nomadVar \"nomad/jobs/quicksand\" }}{{ .keys }}{{ end }}"
      }

      template {
        destination = "${NOMAD_SECRETS_DIR}/tls.crt"
        data        = "{{ with nomadVar \"nomad/jobs/quicksand\" }}{{ .tls_crt }}{{ end }}"
      }

      template {
        destination = "${NOMAD_SECRETS_DIR}/tls.key"
        perms       = "0600"
        data        = "{{ with nomadVar \"nomad/jobs/quicksand\" }}{{ .tls_key }}{{ end }}"
      }

      # SIGTERM saves every sandbox for the next start.
      kill_signal  = "SIGTERM"
      kill_timeout = "150s"

      resources {
        cpu    = 2000
        memory = 8192
      }

      service {
        name     = "quicksand"
        port     = "api"
        provider = "nomad"

        check {
          type     = "http"
          protocol = "https"
          path     = "/v1/health"
          interval = "10s"
          timeout  = "2s"
          tls_skip_verify = true
        }
      }
    }
  }
}
