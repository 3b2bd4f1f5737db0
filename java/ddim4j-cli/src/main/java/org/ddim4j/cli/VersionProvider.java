package org.ddim4j.cli;

import org.ddim4j.Ddim;

import picocli.CommandLine.IVersionProvider;

final class VersionProvider implements IVersionProvider {
    @Override
    public String[] getVersion() {
        return new String[] {"ddim4j " + Ddim.version() + " (libtorch " + Ddim.torchVersion() + ")"};
    }
}
