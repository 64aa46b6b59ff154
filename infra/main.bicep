// The whole Azure side of W365 Payments, in one resource group:
//   Function App (Flex Consumption, Linux, Python 3.11) with a system-assigned managed identity,
//   Service Bus namespace + queue `w365-work` (duplicate detection, MaxDeliveryCount, dead-lettering),
//   Application Insights on a Log Analytics workspace, a Key Vault (RBAC) holding every secret setting,
//   a storage account for the host and the deployment package (no shared keys: identity only),
//   and the least-privilege role assignments the app's identity needs.
// infra/main.json is the same template as ARM JSON (tests/deployment/test_infra.py checks both).
// Deploy: README "Deploy to Azure".

targetScope = 'resourceGroup'

@description('Azure region of every resource.')
param location string = resourceGroup().location

@description('Short lower-case prefix of every resource name.')
@minLength(3)
@maxLength(11)
param baseName string = 'w365pay'

@description('Dataverse Web API org URL, e.g. https://contoso.crm.dynamics.com')
param dataverseUrl string

@description('true: the app\'s managed identity is the Dataverse application user (no client secret). false: DATAVERSE_CLIENT_ID + the dataverse-client-secret secret.')
param dataverseUseManagedIdentity bool = true

@description('App registration (client) id; only for the client-secret form.')
param dataverseClientId string = ''

@description('Authorize.Net API login id (not a secret).')
param authorizeNetLoginId string

@allowed(['sandbox', 'production'])
param authorizeNetEnvironment string = 'sandbox'

@description('The merchant account\'s currency (ISO code).')
param authorizeNetCurrency string = 'USD'

@description('NCRONTAB of the daily billing run (UTC).')
param billingSchedule string = '0 0 6 * * *'

@description('NCRONTAB of the daily dunning sweep: card-update re-sends and expiry notices (UTC).')
param dunningSchedule string = '0 30 6 * * *'

@description('NCRONTAB of the monthly Account Updater import (UTC).')
param accountUpdaterSchedule string = '0 0 7 2 * *'

@description('Public base URL of the app for emailed links; empty: https://<app>.azurewebsites.net')
param publicBaseUrl string = ''

@description('Scale-out limit: Dataverse allows ~52 concurrent requests per application user and host.json allows 8 Service Bus messages per instance.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 5

@allowed([2048, 4096])
param instanceMemoryMB int = 2048

@description('Deliveries of a queued message before Service Bus dead-letters it.')
@minValue(1)
param maxDeliveryCount int = 10

@description('How long Service Bus remembers a MessageId to drop a duplicate.')
param duplicateDetectionWindow string = 'PT10M'

// Secret values: given on the first deployment (or set later with `az keyvault secret set`); an empty value leaves
// the vault's secret as it is, so CI redeploys without ever holding a secret.
@secure()
param authorizeNetTransactionKey string = ''
@secure()
param authorizeNetClientKey string = ''
@secure()
param authorizeNetSignatureKey string = ''
@secure()
param webhookKey string = ''
@secure()
param providerSigningKey string = ''
@secure()
param dataverseClientSecret string = ''

var suffix = uniqueString(resourceGroup().id)
var appName = '${baseName}-func-${suffix}'
var queueName = 'w365-work'
var packageContainer = 'app-package'

// Built-in role definition ids (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
var roles = {
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

// Key Vault secrets, named as the app settings' references name them (the app reads them through those only).
var secrets = [
  { name: 'authorizenet-transaction-key', value: authorizeNetTransactionKey }
  { name: 'authorizenet-client-key', value: authorizeNetClientKey }
  { name: 'authorizenet-signature-key', value: authorizeNetSignatureKey }
  { name: 'w365-webhook-key', value: webhookKey }
  { name: 'w365-provider-signing-key', value: providerSigningKey }
  { name: 'dataverse-client-secret', value: dataverseClientSecret }
]

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${baseName}-logs-${suffix}'
  location: location
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${baseName}-appi-${suffix}'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    DisableLocalAuth: true // telemetry is accepted only from Entra identities (the app's, via Monitoring Metrics Publisher)
  }
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: take('${baseName}st${suffix}', 24)
  location: location
  sku: { name: 'Standard_LRS' }
  kind: 'StorageV2'
  properties: {
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    supportsHttpsTrafficOnly: true
  }
}

resource blobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource package 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: packageContainer
}

resource serviceBus 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {
  name: '${baseName}-sb-${suffix}'
  location: location
  sku: { name: 'Standard', tier: 'Standard' } // duplicate detection needs Standard or Premium
  properties: {
    minimumTlsVersion: '1.2'
    disableLocalAuth: true // no SAS keys: only Entra identities with data roles
  }
}

resource workQueue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
  parent: serviceBus
  name: queueName
  properties: {
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
    maxDeliveryCount: maxDeliveryCount
    deadLetteringOnMessageExpiration: true
    lockDuration: 'PT5M' // host.json functionTimeout and maxAutoLockRenewalDuration are 5 minutes
    defaultMessageTimeToLive: 'P14D'
    requiresSession: false
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: take('${baseName}-kv-${suffix}', 24)
  location: location
  properties: {
    tenantId: tenant().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
  }
}

resource secretValues 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = [for secret in secrets: if (!empty(secret.value)) {
  parent: vault
  name: secret.name
  properties: { value: secret.value }
}]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: '${baseName}-plan-${suffix}'
  location: location
  kind: 'functionapp'
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: { reserved: true }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  kind: 'functionapp,linux'
  identity: { type: 'SystemAssigned' }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: 'SystemAssigned'
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${packageContainer}'
          authentication: { type: 'SystemAssignedIdentity' }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: { name: 'python', version: '3.11' }
    }
  }
}

// --- the app's identity: exactly what it needs, where it needs it ----------------------------------------------------

resource canReadSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: vault
  name: guid(vault.id, app.id, roles.keyVaultSecretsUser)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource canSendWork 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: workQueue
  name: guid(workQueue.id, app.id, roles.serviceBusDataSender)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataSender)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource canReceiveWork 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: workQueue
  name: guid(workQueue.id, app.id, roles.serviceBusDataReceiver)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.serviceBusDataReceiver)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// The Flex host keeps its keys, leases and the deployment package in blobs, and its diagnostic events in a table.
resource hostBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, app.id, roles.storageBlobDataOwner)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource hostTables 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, app.id, roles.storageTableDataContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource canPublishTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: insights
  name: guid(insights.id, app.id, roles.monitoringMetricsPublisher)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// App settings after the roles, so the Key Vault references resolve on the first start.
resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: app
  name: 'appsettings'
  dependsOn: [canReadSecrets, canSendWork, canReceiveWork, hostBlobs, hostTables, canPublishTelemetry]
  properties: {
    AzureWebJobsStorage__accountName: storage.name
    APPLICATIONINSIGHTS_CONNECTION_STRING: insights.properties.ConnectionString // no key: local auth is off
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD'
    W365_MODE: 'real'
    DATAVERSE_URL: dataverseUrl
    DATAVERSE_TENANT_ID: tenant().tenantId
    DATAVERSE_CLIENT_ID: dataverseClientId
    DATAVERSE_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/dataverse-client-secret/)'
    DATAVERSE_USE_MANAGED_IDENTITY: dataverseUseManagedIdentity ? 'true' : 'false'
    AUTHORIZENET_LOGIN_ID: authorizeNetLoginId
    AUTHORIZENET_TRANSACTION_KEY: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/authorizenet-transaction-key/)'
    AUTHORIZENET_CLIENT_KEY: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/authorizenet-client-key/)'
    AUTHORIZENET_SIGNATURE_KEY: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/authorizenet-signature-key/)'
    AUTHORIZENET_ENVIRONMENT: authorizeNetEnvironment
    AUTHORIZENET_CURRENCY: authorizeNetCurrency
    W365_WEBHOOK_KEY: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/w365-webhook-key/)'
    W365_PUBLIC_BASE_URL: empty(publicBaseUrl) ? 'https://${app.properties.defaultHostName}' : publicBaseUrl
    W365_PROVIDER_SIGNING_KEY: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/w365-provider-signing-key/)'
    W365_BILLING_SCHEDULE: billingSchedule
    W365_DUNNING_SCHEDULE: dunningSchedule
    W365_ACCOUNT_UPDATER_SCHEDULE: accountUpdaterSchedule
    W365_WORK_QUEUE: queueName
    ServiceBusConnection__fullyQualifiedNamespace: '${serviceBus.name}.servicebus.windows.net'
  }
}

output functionAppName string = app.name
output functionAppPrincipalId string = app.identity.principalId
output keyVaultName string = vault.name
output serviceBusNamespace string = serviceBus.name
output workQueue string = workQueue.name
