#!/usr/bin/env python3
"""Writes src/server/openapi.json, the OpenAPI 3 document of `imagesmith serve`.

Run it after changing a route (src/server/router.h) or a resource type:
    python3 src/server/gen_openapi.py > src/server/openapi.json
CI lints the result with Redocly (tests/server/lint_openapi.sh) and
e2e_server_test checks that every path in it answers.
"""
import json

SUB = "/subscriptions/{subscriptionId}"
RG = SUB + "/resourceGroups/{resourceGroupName}"

PARAMS = {
    "subscriptionId": "The subscription's GUID (imagesmith account show).",
    "resourceGroupName": "The resource group's name.",
    "galleryName": "The gallery's name.",
    "galleryImageName": "The gallery image definition's name.",
    "galleryImageVersionName": "The version, Major.Minor.Patch.",
    "imageName": "The managed image's name.",
    "imageTemplateName": "The image template's name.",
    "runOutputName": "The run output's name.",
    "location": "The region the operation was started in.",
    "roleAssignmentName": "The role assignment's name, a GUID.",
    "resourceName": "The user-assigned identity's name.",
    "operationId": "The operation's ID, from the Azure-AsyncOperation header.",
    "tenant": "The tenant (directory) ID.",
    "clusterName": "The Service Fabric managed cluster's name.",
    "nodeTypeName": "The node type's name.",
    "accountName": "The Batch account's name.",
    "poolName": "The Batch pool's id.",
    "nodeId": "The node's id (tvmps_...).",
    "jobName": "The Batch job's id.",
    "taskName": "The Batch task's id.",
    "cycleCloudClusterName": "The CycleCloud cluster's name (import_cluster NAME).",
}


def param(name):
    return {"$ref": "#/components/parameters/" + name}


def err(desc):
    return {"description": desc,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}


def ok(desc, schema="Resource"):
    return {"description": desc,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/" + schema}}}}


def errors(*codes):
    out = {
        "400": err("Bad request: InvalidRequestContent, MissingApiVersionParameter, "
                   "InvalidApiVersionParameter, InvalidResourceName."),
        "401": err("AuthenticationFailed, InvalidAuthenticationToken or ExpiredAuthenticationToken."),
        "403": err("AuthorizationFailed: the caller's roles do not allow the action."),
        "404": err("ResourceNotFound, ResourceGroupNotFound or InvalidResourceType."),
    }
    for c in codes:
        out[c] = {"409": err("Conflict."), "412": err("PreconditionFailed: If-Match / If-None-Match."),
                  "413": err("RequestEntityTooLarge: the body is larger than the limit."),
                  "202": {"description": "Accepted; follow the Azure-AsyncOperation header.",
                          "headers": {"Azure-AsyncOperation": {"$ref": "#/components/headers/AzureAsyncOperation"},
                                      "Location": {"$ref": "#/components/headers/Location"}}}}[c]
    return out


def op_id(*words):
    return "_".join(words)


def resource_ops(name, tag, path_params, children=(), actions=(), put=True, patch=True, delete=True):
    ops = {}
    common = [param(p) for p in path_params] + [param("apiVersion")]
    ops["get"] = {"tags": [tag], "operationId": op_id(name, "Get"), "summary": "Get a " + tag + ".",
                  "parameters": common,
                  "responses": {"200": {**ok("The resource."), "headers": {"ETag": {"$ref": "#/components/headers/ETag"}}},
                                **errors()}}
    if put:
        ops["put"] = {"tags": [tag], "operationId": op_id(name, "CreateOrUpdate"),
                      "summary": "Create or replace a " + tag + ".",
                      "parameters": common + [param("ifMatch"), param("ifNoneMatch")],
                      "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Resource"}}}},
                      "responses": {"200": ok("Replaced."), "201": {**ok("Created."), "headers": {"Azure-AsyncOperation": {"$ref": "#/components/headers/AzureAsyncOperation"}}},
                                    **errors("202", "409", "412", "413")}}
    if patch:
        ops["patch"] = {"tags": [tag], "operationId": op_id(name, "Update"),
                        "summary": "Update a " + tag + " (tags and mutable properties).",
                        "parameters": common + [param("ifMatch")],
                        "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Resource"}}}},
                        "responses": {"200": ok("Updated."), **errors("202", "409", "412", "413")}}
    if delete:
        ops["delete"] = {"tags": [tag], "operationId": op_id(name, "Delete"), "summary": "Delete a " + tag + ".",
                         "parameters": common + [param("ifMatch")],
                         "responses": {"200": {"description": "Deleted."}, "204": {"description": "There was nothing to delete."},
                                       **errors("202", "409", "412")}}
    return ops


def list_op(name, tag, path_params):
    return {"get": {"tags": [tag], "operationId": op_id(name), "summary": "List " + tag + " resources, a page at a time.",
                    "parameters": [param(p) for p in path_params] + [param("apiVersion"), param("top"), param("skipToken")],
                    "responses": {"200": ok("A page; nextLink is the next one.", "ResourceList"), **errors()}}}


def action_op(name, tag, path_params, summary):
    return {"post": {"tags": [tag], "operationId": name, "summary": summary,
                     "parameters": [param(p) for p in path_params] + [param("apiVersion")],
                     "responses": {"200": {"description": "Done."}, **errors("202", "409")}}}


def download_op(name, tag, path_params, summary, query):
    return {"get": {
        "tags": [tag], "operationId": name, "summary": summary,
        "description": "imagesmith's own. The bearer token may also come in the access_token query "
                       "parameter (RFC 6750), so a link can download; Range (one byte range) is honoured.",
        "parameters": [param(p) for p in path_params] + [param("apiVersion")] + [param(q) for q in query] +
                      [param("accessToken"), param("range")],
        "responses": {"200": {"description": "The file (Content-Length, Content-Disposition, Accept-Ranges: bytes).",
                              "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                      "206": {"description": "The requested range (Content-Range).",
                              "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                      "416": err("InvalidRange: the range starts past the end (Content-Range: bytes */size)."),
                      **errors()}}}


paths = {}
NOT_ALLOWED = {"405": err("MethodNotAllowed: the path takes another method.")}
paths["/healthz"] = {"get": {"tags": ["Server"], "operationId": "Health_Get", "summary": "Liveness.", "security": [],
                             "responses": {"200": {"description": "The server is up.",
                                                   "content": {"application/json": {"schema": {"type": "object", "properties": {"status": {"type": "string"}}}}}}, **NOT_ALLOWED}}}
paths["/metrics"] = {"get": {"tags": ["Server"], "operationId": "Metrics_Get", "summary": "Prometheus metrics.", "security": [],
                             "responses": {"200": {"description": "The text exposition format, version 0.0.4.",
                                                   "content": {"text/plain": {"schema": {"type": "string"}}}}, **NOT_ALLOWED}}}
paths["/openapi.json"] = {"get": {"tags": ["Server"], "operationId": "OpenApi_Get", "summary": "This document.", "security": [],
                                  "responses": {"200": {"description": "The OpenAPI document.",
                                                   "content": {"application/json": {"schema": {"type": "object"}}}}, **NOT_ALLOWED}}}
paths["/{tenant}/oauth2/v2.0/token"] = {"post": {
    "tags": ["Identity"], "operationId": "Token_ClientCredentials", "security": [],
    "summary": "A bearer token for a service principal (OAuth 2.0 client credentials grant).",
    "parameters": [param("tenant")],
    "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
        "type": "object", "required": ["grant_type", "client_id", "client_secret"],
        "properties": {"grant_type": {"type": "string", "enum": ["client_credentials"]},
                       "client_id": {"type": "string"}, "client_secret": {"type": "string"},
                       "scope": {"type": "string"}}}}}},
    "responses": {"200": {"description": "The token.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TokenResponse"}}}},
                  "400": {"description": "invalid_request", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}}},
                  "401": {"description": "invalid_client", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}}}}}}

for path, op, kind, summary in [
        ("/", "Console_Page", "text/html", "The web console's page (doc/console.md); its routes follow '#'."),
        ("/console/app.js", "Console_Script", "text/javascript", "The web console's script."),
        ("/console/app.css", "Console_Stylesheet", "text/css", "The web console's stylesheet.")]:
    paths[path] = {"get": {"tags": ["Console"], "operationId": op, "summary": summary, "security": [],
                           "responses": {"200": {"description": "The file, gzip-compressed when Accept-Encoding allows.",
                                                 "content": {kind: {"schema": {"type": "string"}}}},
                                         **NOT_ALLOWED}}}

paths["/subscriptions"] = {"get": {
    "tags": ["subscription"], "operationId": "Subscriptions_List", "summary": "The subscriptions the caller may read.",
    "parameters": [param("apiVersion")],
    "responses": {"200": ok("The subscriptions.", "ResourceList"), **errors()}}}
paths[SUB] = {"get": resource_ops("Subscriptions", "subscription", ["subscriptionId"], put=False, patch=False, delete=False)["get"]}
paths[SUB + "/resourcegroups"] = list_op("ResourceGroups_List", "resource group", ["subscriptionId"])
paths[SUB + "/resourcegroups/{resourceGroupName}"] = resource_ops("ResourceGroups", "resource group", ["subscriptionId", "resourceGroupName"])

G = RG + "/providers/Microsoft.Compute/galleries"
paths[SUB + "/providers/Microsoft.Compute/galleries"] = list_op("Galleries_List", "gallery", ["subscriptionId"])
paths[G] = list_op("Galleries_ListByResourceGroup", "gallery", ["subscriptionId", "resourceGroupName"])
gp = ["subscriptionId", "resourceGroupName", "galleryName"]
paths[G + "/{galleryName}"] = resource_ops("Galleries", "gallery", gp)
paths[G + "/{galleryName}/images"] = list_op("GalleryImages_ListByGallery", "gallery image", gp)
ip = gp + ["galleryImageName"]
paths[G + "/{galleryName}/images/{galleryImageName}"] = resource_ops("GalleryImages", "gallery image", ip)
paths[G + "/{galleryName}/images/{galleryImageName}/versions"] = list_op("GalleryImageVersions_ListByGalleryImage", "gallery image version", ip)
paths[G + "/{galleryName}/images/{galleryImageName}/versions/{galleryImageVersionName}"] = resource_ops(
    "GalleryImageVersions", "gallery image version", ip + ["galleryImageVersionName"])
paths[G + "/{galleryName}/images/{galleryImageName}/versions/{galleryImageVersionName}/download"] = download_op(
    "GalleryImageVersions_Download", "gallery image version", ip + ["galleryImageVersionName"],
    "The version's OS disk in a region, exported once per format and kept.", ["format", "locationQuery"])

I = RG + "/providers/Microsoft.Compute/images"
paths[SUB + "/providers/Microsoft.Compute/images"] = list_op("Images_List", "managed image", ["subscriptionId"])
paths[I] = list_op("Images_ListByResourceGroup", "managed image", ["subscriptionId", "resourceGroupName"])
paths[I + "/{imageName}"] = resource_ops("Images", "managed image", ["subscriptionId", "resourceGroupName", "imageName"])
paths[I + "/{imageName}/download"] = download_op(
    "Images_Download", "managed image", ["subscriptionId", "resourceGroupName", "imageName"],
    "The managed image's OS disk, exported once per format and kept.", ["format", "locationQuery"])

T = RG + "/providers/Microsoft.VirtualMachineImages/imageTemplates"
tp = ["subscriptionId", "resourceGroupName", "imageTemplateName"]
paths[SUB + "/providers/Microsoft.VirtualMachineImages/imageTemplates"] = list_op("VirtualMachineImageTemplates_List", "image template", ["subscriptionId"])
paths[T] = list_op("VirtualMachineImageTemplates_ListByResourceGroup", "image template", ["subscriptionId", "resourceGroupName"])
paths[T + "/{imageTemplateName}"] = resource_ops("VirtualMachineImageTemplates", "image template", tp)
paths[T + "/{imageTemplateName}/run"] = action_op("VirtualMachineImageTemplates_Run", "image template", tp, "Start a run (asynchronous).")
paths[T + "/{imageTemplateName}/cancel"] = action_op("VirtualMachineImageTemplates_Cancel", "image template", tp, "Cancel the running build.")
paths[T + "/{imageTemplateName}/validate"] = {"post": {
    "tags": ["image template"], "operationId": "VirtualMachineImageTemplates_Validate",
    "summary": "Check a template without storing it (imagesmith's own): every problem, with its JSON path.",
    "parameters": [param(p) for p in tp] + [param("apiVersion")],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Resource"}}}},
    "responses": {"200": ok("The problems found (none when valid).", "ValidationResult"), **errors("413")}}}
paths[T + "/{imageTemplateName}/customizationLog"] = {"get": {
    "tags": ["image template"], "operationId": "VirtualMachineImageTemplates_GetCustomizationLog",
    "summary": "A run's customization log from a byte offset, in whole lines (imagesmith's own), to follow a run.",
    "parameters": [param(p) for p in tp] + [param("apiVersion"), param("offset"), param("runId")],
    "responses": {"200": ok("Up to 256 KiB of the log.", "LogChunk"), **errors()}}}
paths[T + "/{imageTemplateName}/runs"] = {"get": {
    "tags": ["image template"], "operationId": "VirtualMachineImageTemplates_ListRuns",
    "summary": "The template's run history, newest first, at most 20 runs (imagesmith's own).",
    "parameters": [param(p) for p in tp] + [param("apiVersion")],
    "responses": {"200": ok("One record per run.", "RunList"), **errors()}}}


paths[T + "/{imageTemplateName}/download"] = download_op(
    "VirtualMachineImageTemplates_Download", "image template", tp,
    "A run's disk (artifact=disk, runId) or a run output's VHD (artifact=runOutput, runOutputName).",
    ["runId", "artifact", "runOutputNameQuery"])
paths[T + "/{imageTemplateName}/runOutputs"] = list_op("VirtualMachineImageTemplates_ListRunOutputs", "run output", tp)
paths[T + "/{imageTemplateName}/runOutputs/{runOutputName}"] = {"get": resource_ops("VirtualMachineImageTemplates_GetRunOutput", "run output", tp + ["runOutputName"], put=False, patch=False, delete=False)["get"]}

# Role assignments: an extension resource at any scope; here at subscription
# and resource group scope (a resource's scope works the same way).
for scope, params, label in [(SUB, ["subscriptionId"], "Subscription"),
                             (RG, ["subscriptionId", "resourceGroupName"], "ResourceGroup")]:
    RA = scope + "/providers/Microsoft.Authorization/roleAssignments"
    paths[RA] = list_op("RoleAssignments_ListFor" + label, "role assignment", params)
    paths[RA + "/{roleAssignmentName}"] = resource_ops("RoleAssignments_" + label, "role assignment",
                                                       params + ["roleAssignmentName"], patch=False)

# The caller's own permissions at a scope (Azure's Permissions API).
for scope, params, label in [(SUB, ["subscriptionId"], "Subscription"),
                             (RG, ["subscriptionId", "resourceGroupName"], "ResourceGroup")]:
    paths[scope + "/providers/Microsoft.Authorization/permissions"] = {"get": {
        "tags": ["role assignment"], "operationId": "Permissions_ListFor" + label,
        "summary": "What the caller may do at the scope: one entry per role held there or above.",
        "parameters": [param(p) for p in params] + [param("apiVersion")],
        "responses": {"200": ok("The caller's permissions.", "PermissionList"), **errors()}}}

MI = RG + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities"
paths[SUB + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities"] = list_op(
    "UserAssignedIdentities_ListBySubscription", "user-assigned identity", ["subscriptionId"])
paths[MI] = list_op("UserAssignedIdentities_ListByResourceGroup", "user-assigned identity",
                    ["subscriptionId", "resourceGroupName"])
paths[MI + "/{resourceName}"] = resource_ops("UserAssignedIdentities", "user-assigned identity",
                                             ["subscriptionId", "resourceGroupName", "resourceName"])

SF = RG + "/providers/Microsoft.ServiceFabric/managedClusters"
cp = ["subscriptionId", "resourceGroupName", "clusterName"]
paths[SUB + "/providers/Microsoft.ServiceFabric/managedClusters"] = list_op(
    "ManagedClusters_ListBySubscription", "managed cluster", ["subscriptionId"])
paths[SF] = list_op("ManagedClusters_ListByResourceGroup", "managed cluster", ["subscriptionId", "resourceGroupName"])
paths[SF + "/{clusterName}"] = resource_ops("ManagedClusters", "managed cluster", cp)
paths[SF + "/{clusterName}/checkOSUpgrades"] = action_op(
    "ManagedClusters_CheckOSUpgrades", "managed cluster", cp,
    "Run the automatic OS upgrade check once (doc/servicefabric.md).")
paths[SF + "/{clusterName}/nodeTypes"] = list_op("NodeTypes_ListByManagedClusters", "node type", cp)
np_ = cp + ["nodeTypeName"]
paths[SF + "/{clusterName}/nodeTypes/{nodeTypeName}"] = resource_ops("NodeTypes", "node type", np_, patch=False)
for action, name, summary in [
        ("restart", "NodeTypes_Restart", "Restart nodes, one upgrade domain at a time."),
        ("reimage", "NodeTypes_Reimage", "Reimage nodes onto their image, one upgrade domain at a time."),
        ("osRollingUpgrade", "NodeTypes_StartOSRollingUpgrade", "Roll to the image definition's latest now."),
        ("getRollout", "NodeTypes_GetRollout", "The current or last rollout."),
        ("cancelRollout", "NodeTypes_CancelRollout", "Cancel the rollout in progress."),
        ("rolloutHistory", "NodeTypes_RolloutHistory", "The last 5 rollouts, newest first.")]:
    paths[SF + "/{clusterName}/nodeTypes/{nodeTypeName}/" + action] = action_op(name, "node type", np_, summary)
# Batch accounts, pools, nodes, jobs and tasks (doc/batch.md).
BA = RG + "/providers/Microsoft.Batch/batchAccounts"
bap = ["subscriptionId", "resourceGroupName", "accountName"]
paths[SUB + "/providers/Microsoft.Batch/batchAccounts"] = list_op("BatchAccount_List", "Batch account", ["subscriptionId"])
paths[BA] = list_op("BatchAccount_ListByResourceGroup", "Batch account", ["subscriptionId", "resourceGroupName"])
paths[BA + "/{accountName}"] = resource_ops("BatchAccount", "Batch account", bap)
P = BA + "/{accountName}/pools"
pp = bap + ["poolName"]
paths[P] = list_op("Pool_ListByBatchAccount", "Batch pool", bap)
paths[P + "/{poolName}"] = resource_ops("Pool", "Batch pool", pp, patch=False)
paths[P + "/{poolName}/resize"] = action_op("Pool_Resize", "Batch pool", pp,
                                            "Change the target node counts (body: targetDedicatedNodes, targetLowPriorityNodes, resizeTimeout, nodeDeallocationOption).")
paths[P + "/{poolName}/stopResize"] = action_op("Pool_StopResize", "Batch pool", pp, "Stop the pool's resize (ResizeStopped).")
paths[P + "/{poolName}/nodes"] = list_op("ComputeNode_List", "Batch node", pp)
np_ = pp + ["nodeId"]
paths[P + "/{poolName}/nodes/{nodeId}"] = resource_ops("ComputeNode", "Batch node", np_, put=False, patch=False)
paths[P + "/{poolName}/nodes/{nodeId}/reboot"] = action_op("ComputeNode_Reboot", "Batch node", np_, "Reboot the node.")
paths[P + "/{poolName}/nodes/{nodeId}/reimage"] = action_op("ComputeNode_Reimage", "Batch node", np_, "Reimage the node.")
paths[P + "/{poolName}/nodes/{nodeId}/disableScheduling"] = action_op(
    "ComputeNode_DisableScheduling", "Batch node", np_,
    "Stop scheduling tasks on the node (it goes offline); body {\"nodeDisableSchedulingOption\": requeue|terminate|taskcompletion}.")
paths[P + "/{poolName}/nodes/{nodeId}/enableScheduling"] = action_op(
    "ComputeNode_EnableScheduling", "Batch node", np_, "Schedule tasks on the node again.")
J = BA + "/{accountName}/jobs"
jp = bap + ["jobName"]
paths[J] = list_op("Job_List", "Batch job", bap)
paths[J + "/{jobName}"] = resource_ops("Job", "Batch job", jp, patch=False)
paths[J + "/{jobName}/tasks"] = list_op("Task_List", "Batch task", jp)
tkp = jp + ["taskName"]
paths[J + "/{jobName}/tasks/{taskName}"] = resource_ops("Task", "Batch task", tkp, patch=False)
paths[J + "/{jobName}/tasks/{taskName}/getFile"] = action_op("Task_GetFile", "Batch task", tkp,
                                                             "A task file's text (body: {filePath: stdout.txt | stderr.txt}).")

# CycleCloud clusters imported from their template files (doc/cyclecloud.md).
# The cluster's properties.nodes[] are its nodes (name, nodearray, state,
# image, hostname, ...); properties.nodearrays[] its nodearrays.
CC = RG + "/providers/Microsoft.CycleCloud/clusters"
ccp = ["subscriptionId", "resourceGroupName", "cycleCloudClusterName"]
paths[SUB + "/providers/Microsoft.CycleCloud/clusters"] = list_op("CycleCloudClusters_List", "CycleCloud cluster", ["subscriptionId"])
paths[CC] = list_op("CycleCloudClusters_ListByResourceGroup", "CycleCloud cluster", ["subscriptionId", "resourceGroupName"])
paths[CC + "/{cycleCloudClusterName}"] = resource_ops("CycleCloudClusters", "CycleCloud cluster", ccp, patch=False)
for action, name, summary in [
        ("start", "CycleCloudClusters_Start", "Start the cluster's Off nodes and its nodearrays' InitialCount (body: optional nodeDriver)."),
        ("terminate", "CycleCloudClusters_Terminate", "Terminate every node of the cluster."),
        ("addNodes", "CycleCloudClusters_AddNodes", "Add nodes to a nodearray (body: nodearray, count); refused past MaxCount / MaxCoreCount."),
        ("removeNode", "CycleCloudClusters_RemoveNode", "Terminate a node and remove it (body: node).")]:
    paths[CC + "/{cycleCloudClusterName}/" + action] = action_op(name, "CycleCloud cluster", ccp, summary)

# The durable operations at a scope that the caller may read (imagesmith's own).
for scope, params, label in [(SUB, ["subscriptionId"], "Subscription"),
                             (RG, ["subscriptionId", "resourceGroupName"], "ResourceGroup")]:
    paths[scope + "/providers/Microsoft.Resources/operations"] = {"get": {
        "tags": ["Operation"], "operationId": "OperationRecords_ListFor" + label,
        "summary": "The durable operations on resources in the scope that the caller may read.",
        "description": "Each item is the operation's status with type, target, owner and result. "
                       "Looks at the newest 1,000 records; items come in ID order like every list "
                       "(sort by startTime).",
        "parameters": [param(p) for p in params] + [param("apiVersion"), param("target"), param("status"),
                                                    param("top"), param("skipToken")],
        "responses": {"200": ok("The operations.", "OperationList"), **errors()}}}

# A template run's operations are Microsoft.VirtualMachineImages', a gallery
# version replication's Microsoft.Compute's (the server finds either by ID).
for ns, prefix in (("Microsoft.VirtualMachineImages", "Operations"),
                   ("Microsoft.Compute", "ComputeOperations")):
    OPS = SUB + "/providers/" + ns + "/locations/{location}"
    opp = [param("subscriptionId"), param("location"), param("operationId"), param("apiVersion")]
    paths[OPS + "/operations/{operationId}"] = {"get": {
        "tags": ["Operation"], "operationId": prefix + "_GetStatus", "summary": "The status of a durable operation.",
        "parameters": opp, "responses": {"200": ok("The operation.", "OperationStatus"), **errors()}}}
    paths[OPS + "/operationResults/{operationId}"] = {"get": {
        "tags": ["Operation"], "operationId": prefix + "_GetResult", "summary": "202 while the operation runs, then its final status.",
        "parameters": opp, "responses": {"200": ok("The operation has ended.", "OperationStatus"),
                                         "202": {"description": "Still running; poll the Location header again.",
                                                 "headers": {"Location": {"$ref": "#/components/headers/Location"}}},
                                         **errors()}}}

parameters = {}
for name, desc in PARAMS.items():
    parameters[name] = {"name": name, "in": "path", "required": True, "description": desc, "schema": {"type": "string"}}
parameters["apiVersion"] = {"name": "api-version", "in": "query", "required": True,
                            "description": "The API version; each resource type lists the ones it accepts (InvalidApiVersionParameter names them).",
                            "schema": {"type": "string"}}
parameters["top"] = {"name": "$top", "in": "query", "required": False, "description": "Page size, 1 to 1000.",
                     "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}
parameters["skipToken"] = {"name": "$skipToken", "in": "query", "required": False,
                           "description": "Where the page starts; take it from the previous page's nextLink.",
                           "schema": {"type": "string"}}
parameters["offset"] = {"name": "offset", "in": "query", "required": False,
                        "description": "The byte offset to read from (nextOffset of the previous answer); default 0.",
                        "schema": {"type": "integer", "minimum": 0}}
parameters["runId"] = {"name": "runId", "in": "query", "required": False,
                       "description": "An earlier run (one of runs); default the current or last run.",
                       "schema": {"type": "string"}}
for name, desc, schema in [
        ("artifact", "disk (the run's disk.raw, default) or runOutput (a VHD output).", {"type": "string", "enum": ["disk", "runOutput"]}),
        ("runOutputNameQuery", "With artifact=runOutput: the run output's name.", {"type": "string"}),
        ("format", "The disk format: vhd (fixed, the default), raw, vhd-dynamic or qcow2.",
         {"type": "string", "enum": ["vhd", "raw", "vhd-dynamic", "qcow2"]}),
        ("locationQuery", "The region whose replica to export; default the resource's own.", {"type": "string"}),
        ("accessToken", "The bearer token, for a link that cannot send a header (RFC 6750).", {"type": "string"}),
        ("target", "Only the operations on this resource ID.", {"type": "string"}),
        ("status", "Only operations in this state.", {"type": "string", "enum": ["InProgress", "Succeeded", "Failed", "Canceled"]})]:
    qname = {"runOutputNameQuery": "runOutputName", "locationQuery": "location", "accessToken": "access_token"}.get(name, name)
    parameters[name] = {"name": qname, "in": "query", "required": False, "description": desc, "schema": schema}
parameters["range"] = {"name": "Range", "in": "header", "required": False,
                       "description": "One byte range: bytes=A-B, bytes=A- or bytes=-N.", "schema": {"type": "string"}}
parameters["ifMatch"] = {"name": "If-Match", "in": "header", "required": False,
                         "description": "Only if the resource's ETag is this one (or any, for *).", "schema": {"type": "string"}}
parameters["ifNoneMatch"] = {"name": "If-None-Match", "in": "header", "required": False,
                             "description": "* creates only if the resource does not exist.", "schema": {"type": "string"}}

doc = {
    "openapi": "3.0.3",
    "info": {"title": "imagesmith REST API", "version": "0.1.0",
             "description": "Azure Resource Manager's URL shapes, verbs, status codes and error bodies for the resources imagesmith provides. See doc/server.md.",
             "license": {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"}},
    "servers": [{"url": "http://127.0.0.1:8443", "description": "imagesmith serve (https:// with --tls-cert and --tls-key)"}],
    "security": [{"bearer": []}],
    "tags": [{"name": t, "description": d} for t, d in [
        ("Server", "The server's own endpoints."), ("Console", "The web console's files."), ("Identity", "Tokens."),
        ("subscription", "Subscriptions."), ("resource group", "Resource groups."),
        ("gallery", "Azure Compute Galleries."), ("gallery image", "Image definitions."),
        ("gallery image version", "Image versions."), ("managed image", "Managed images."),
        ("image template", "Image Builder templates."), ("run output", "A template run's outputs."),
        ("role assignment", "Role assignments (Owner, Contributor, Reader) at a scope."),
        ("user-assigned identity", "Managed identities that templates name."),
        ("Batch account", "Batch accounts (core quotas)."), ("Batch pool", "Batch pools."),
        ("Batch node", "The nodes of a Batch pool."), ("Batch job", "Batch jobs."),
        ("Batch task", "Batch tasks."),
        ("CycleCloud cluster", "Clusters imported from CycleCloud template files, and their nodes."),
        ("managed cluster", "Service Fabric managed clusters."), ("node type", "Service Fabric node types."),
        ("Operation", "Durable operations.")]],
    "paths": paths,
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                       "description": "imagesmith account get-access-token, or the token endpoint."}},
        "parameters": parameters,
        "headers": {
            "ETag": {"description": "The resource's version; send it back in If-Match.", "schema": {"type": "string"}},
            "AzureAsyncOperation": {"description": "The operation status URL to poll.", "schema": {"type": "string"}},
            "Location": {"description": "The operation result URL: 202 while running.", "schema": {"type": "string"}},
        },
        "schemas": {
            "Resource": {"type": "object", "description": "A resource in Azure's REST shape.",
                         "properties": {"id": {"type": "string", "readOnly": True}, "name": {"type": "string", "readOnly": True},
                                        "type": {"type": "string", "readOnly": True}, "location": {"type": "string"},
                                        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                                        "properties": {"type": "object"}},
                         "additionalProperties": True},
            "ResourceList": {"type": "object", "required": ["value"],
                             "properties": {"value": {"type": "array", "items": {"$ref": "#/components/schemas/Resource"}},
                                            "nextLink": {"type": "string", "description": "The next page; absent on the last."}}},
            "ErrorDetail": {"type": "object", "required": ["code", "message"],
                            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "target": {"type": "string"},
                                           "details": {"type": "array", "items": {"$ref": "#/components/schemas/ErrorDetail"}}}},
            "ErrorResponse": {"type": "object", "required": ["error"],
                              "properties": {"error": {"$ref": "#/components/schemas/ErrorDetail"}}},
            "OperationStatus": {"type": "object", "required": ["id", "status"],
                                "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                                               "status": {"type": "string", "enum": ["InProgress", "Succeeded", "Failed", "Canceled"]},
                                               "startTime": {"type": "string", "format": "date-time"},
                                               "endTime": {"type": "string", "format": "date-time"},
                                               "percentComplete": {"type": "number"},
                                               "error": {"$ref": "#/components/schemas/ErrorDetail"}}},
            "TokenResponse": {"type": "object", "required": ["access_token", "token_type", "expires_in"],
                              "properties": {"token_type": {"type": "string"}, "expires_in": {"type": "integer"},
                                             "ext_expires_in": {"type": "integer"}, "access_token": {"type": "string"}}},
            "ValidationResult": {"type": "object", "required": ["valid", "diagnostics"],
                                 "properties": {"valid": {"type": "boolean"},
                                                "diagnostics": {"type": "array", "items": {
                                                    "type": "object", "required": ["severity", "path", "message"],
                                                    "properties": {"severity": {"type": "string", "enum": ["error", "warning"]},
                                                                   "path": {"type": "string"}, "message": {"type": "string"}}}}}},
            "LogChunk": {"type": "object", "required": ["runId", "runs", "runState", "offset", "nextOffset", "content"],
                         "properties": {"runId": {"type": "string"}, "runs": {"type": "array", "items": {"type": "string"}},
                                        "runState": {"type": "string"}, "offset": {"type": "integer"},
                                        "nextOffset": {"type": "integer"}, "content": {"type": "string"}}},
            "RunList": {"type": "object", "required": ["value"],
                        "properties": {"value": {"type": "array", "items": {
                            "type": "object",
                            "properties": {"runId": {"type": "string"}, "runState": {"type": "string"},
                                           "runSubState": {"type": "string"}, "message": {"type": "string"},
                                           "startTime": {"type": "string"}, "endTime": {"type": "string", "nullable": True},
                                           "source": {"type": "string"}, "disk": {"type": "string"},
                                           "diskSizeBytes": {"type": "integer"}, "cacheHits": {"type": "integer"},
                                           "cacheMisses": {"type": "integer"}, "customizationLog": {"type": "string"},
                                           "storedImage": {"type": "string"}}}}}},
            "OperationList": {"type": "object", "required": ["value"],
                              "properties": {"value": {"type": "array", "items": {"$ref": "#/components/schemas/OperationRecord"}},
                                             "nextLink": {"type": "string"}}},
            "OperationRecord": {"allOf": [{"$ref": "#/components/schemas/OperationStatus"}, {
                "type": "object",
                "properties": {"type": {"type": "string"}, "target": {"type": "string"},
                               "owner": {"type": "string", "nullable": True},
                               "leaseExpiry": {"type": "string", "nullable": True},
                               "abandoned": {"type": "boolean"}, "properties": {"type": "object"}}}]},
            "PermissionList": {"type": "object", "required": ["value"],
                               "properties": {"value": {"type": "array", "items": {
                                   "type": "object",
                                   "properties": {k: {"type": "array", "items": {"type": "string"}}
                                                  for k in ["actions", "notActions", "dataActions", "notDataActions"]}}}}},
            "OAuthError": {"type": "object", "required": ["error"],
                           "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}}},
        },
    },
}
print(json.dumps(doc, indent=2))
