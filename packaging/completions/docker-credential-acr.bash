# bash completion for docker-credential-acr
_docker_credential_acr() {
    local cur prev words cword
    _init_completion 2>/dev/null || {
        cur="${COMP_WORDS[COMP_CWORD]}"; prev="${COMP_WORDS[COMP_CWORD-1]}"
        words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD
    }
    local commands="get store erase list version kubelet doctor configure help --help --version"
    if [ "$cword" -eq 1 ]; then
        COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        return
    fi
    case "${words[1]}" in
        configure)
            if [ "$cword" -eq 2 ]; then
                COMPREPLY=($(compgen -W "docker podman kubelet --help" -- "$cur"))
            elif [ "${words[2]}" = kubelet ]; then
                COMPREPLY=($(compgen -W "--json --pod-identity" -- "$cur"))
            elif [ "$prev" = --config ]; then
                COMPREPLY=($(compgen -f -- "$cur"))
            else
                COMPREPLY=($(compgen -W "--config --force --remove" -- "$cur"))
            fi
            ;;
        doctor|kubelet|help)
            COMPREPLY=($(compgen -W "--help" -- "$cur"))
            ;;
    esac
}
complete -F _docker_credential_acr docker-credential-acr
