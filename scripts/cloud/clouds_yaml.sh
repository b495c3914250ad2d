# Sourced by up.sh and project.sh: the one shape of a clouds.yaml entry for
# the local cloud, so the admin entry and a project's entry cannot drift.

# clouds_entry NAME AUTH_URL USER PROJECT: print the entry (two-space
# indented, for under `clouds:`); its password goes in secure.yaml.
clouds_entry() {
    cat <<EOT
  $1:
    auth:
      auth_url: $2
      username: $3
      project_name: $4
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
    identity_api_version: 3
EOT
}
