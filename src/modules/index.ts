/**
 * The standard module set, in load order. Adding a feature is adding a folder
 * under src/modules and one line here.
 */
import type { ModuleDefinition } from "../core/module.js";
import accountChanges from "./account-changes/index.js";
import avatarConversion from "./avatar-conversion/index.js";
import blocking from "./blocking/index.js";
import carbons from "./carbons/index.js";
import components from "./components/index.js";
import contactAddresses from "./contact-addresses/index.js";
import csi from "./csi/index.js";
import disco from "./disco/index.js";
import externalServices from "./external-services/index.js";
import fast from "./fast/index.js";
import interconnect from "./interconnect/index.js";
import last from "./last/index.js";
import licensing from "./licensing/index.js";
import mam from "./mam/index.js";
import message from "./message/index.js";
import muc from "./muc/index.js";
import offline from "./offline/index.js";
import pep from "./pep/index.js";
import ping from "./ping/index.js";
import presence from "./presence/index.js";
import privateStorage from "./private/index.js";
import push from "./push/index.js";
import register from "./register/index.js";
import roster from "./roster/index.js";
import s2s from "./s2s/index.js";
import stanzaId from "./stanza-id/index.js";
import streamManagement from "./stream-management/index.js";
import time from "./time/index.js";
import upload from "./upload/index.js";
import vcard from "./vcard/index.js";
import version from "./version/index.js";

export const standardModules: ModuleDefinition<unknown>[] = [
  message,
  stanzaId,
  offline,
  mam,
  carbons,
  csi,
  roster,
  presence,
  disco,
  contactAddresses,
  ping,
  version,
  time,
  last,
  externalServices,
  vcard,
  privateStorage,
  pep,
  avatarConversion,
  blocking,
  register,
  licensing,
  accountChanges,
  components,
  s2s,
  streamManagement,
  fast,
  interconnect,
  push,
  muc,
  upload,
] as ModuleDefinition<unknown>[];
