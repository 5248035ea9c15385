// The cluster's certificates and keys, made with openssl: one CA for every client and
// server certificate, one for the front proxy (aggregated APIs), and the ServiceAccount
// token signing key.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { NETWORK, PKI_DIR } from "./paths.ts";

function openssl(args: string[], dir = PKI_DIR): void {
  const result = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
  if (result.status !== 0) throw new Error(`openssl ${args[0]} failed: ${result.stderr}`);
}

const DAYS = "3650";

// P-256 keys: an RSA key takes seconds to make on a busy machine, and there are a dozen.
const key = (file: string, dir = PKI_DIR) =>
  openssl(
    ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", file],
    dir,
  );

/** A CA's key and certificate, `<name>.key` and `<name>.crt` in `dir`, unless there. */
export function ca(name: string, subject: string, dir = PKI_DIR): void {
  if (existsSync(join(dir, `${name}.crt`))) return;
  key(`${name}.key`, dir);
  openssl(
    [
      "req",
      "-x509",
      "-new",
      "-key",
      `${name}.key`,
      "-subj",
      `/CN=${subject}`,
      "-days",
      DAYS,
      "-out",
      `${name}.crt`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    ],
    dir,
  );
}

type Leaf = Readonly<{
  name: string;
  /** The user name for a client certificate; the host for a server one. */
  cn: string;
  /** Groups (O=) of a client certificate. */
  groups?: readonly string[];
  /** Subject alternative names of a server certificate: DNS:... and IP:... */
  sans?: readonly string[];
  signer?: string;
}>;

/** A key and a certificate its signer's CA signed, `<name>.key` and `<name>.crt` in `dir`. */
export function leaf(cert: Leaf, dir = PKI_DIR): void {
  const { name, cn } = cert;
  if (existsSync(join(dir, `${name}.crt`))) return;
  const signer = cert.signer ?? "ca";
  const subject = [...(cert.groups ?? []).map((g) => `/O=${g}`), `/CN=${cn}`].join("");
  const server = (cert.sans ?? []).length > 0;
  const extensions = [
    "basicConstraints=critical,CA:FALSE",
    "keyUsage=critical,digitalSignature",
    `extendedKeyUsage=${server ? "serverAuth,clientAuth" : "clientAuth"}`,
    ...(server ? [`subjectAltName=${(cert.sans ?? []).join(",")}`] : []),
  ];
  writeFileSync(join(dir, `${name}.ext`), `${extensions.join("\n")}\n`);
  key(`${name}.key`, dir);
  openssl(["req", "-new", "-key", `${name}.key`, "-subj", subject, "-out", `${name}.csr`], dir);
  openssl(
    [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      `${signer}.crt`,
      "-CAkey",
      `${signer}.key`,
      "-CAcreateserial",
      "-days",
      DAYS,
      "-extfile",
      `${name}.ext`,
      "-out",
      `${name}.crt`,
    ],
    dir,
  );
}

export const NODE_NAME = "sluice-node";

/** Makes whatever is missing; existing keys are kept, so a restart keeps its tokens valid. */
export function ensurePki(): void {
  mkdirSync(PKI_DIR, { recursive: true, mode: 0o700 });
  ca("ca", "sluice-cluster-ca");
  ca("front-proxy-ca", "sluice-front-proxy-ca");
  const serviceDomain = `kubernetes.default.svc.${NETWORK.clusterDomain}`;
  leaf({
    name: "apiserver",
    cn: "kube-apiserver",
    sans: [
      "DNS:kubernetes",
      "DNS:kubernetes.default",
      "DNS:kubernetes.default.svc",
      `DNS:${serviceDomain}`,
      "DNS:localhost",
      "IP:127.0.0.1",
      `IP:${NETWORK.nodeIp}`,
      `IP:${NETWORK.kubernetesServiceIp}`,
    ],
  });
  leaf({
    name: "apiserver-kubelet-client",
    cn: "kube-apiserver-kubelet-client",
    groups: ["system:masters"],
  });
  leaf({ name: "front-proxy-client", cn: "front-proxy-client", signer: "front-proxy-ca" });
  leaf({ name: "admin", cn: "sluice-admin", groups: ["system:masters"] });
  leaf({ name: "controller-manager", cn: "system:kube-controller-manager" });
  leaf({ name: "scheduler", cn: "system:kube-scheduler" });
  leaf({ name: "kubelet-client", cn: `system:node:${NODE_NAME}`, groups: ["system:nodes"] });
  leaf({
    name: "kubelet",
    cn: NODE_NAME,
    sans: [`DNS:${NODE_NAME}`, "DNS:localhost", "IP:127.0.0.1", `IP:${NETWORK.nodeIp}`],
  });
  leaf({ name: "kube-proxy", cn: "system:kube-proxy" });
  leaf({ name: "coredns", cn: "system:sluice-coredns" });
  leaf({ name: "kube-router", cn: "system:sluice-kube-router" });
  if (!existsSync(join(PKI_DIR, "sa.key"))) {
    key("sa.key");
    openssl(["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"]);
  }
}
